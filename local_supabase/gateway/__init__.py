"""A local stand-in for PostgREST behind Supabase's `/rest/v1/`: see local_supabase/README.md."""
