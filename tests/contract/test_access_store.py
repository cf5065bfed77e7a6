"""The access port (AccessStore): the same answer from the fake and from the real store."""

from __future__ import annotations

import uuid


def test_a_coordinator_has_its_organisations_in_order(world):
    organizations = [uuid.uuid4() for _ in range(3)]
    coordinator = world.add_coordinator(*organizations)
    world.add_coordinator(uuid.uuid4())  # someone else's
    assert world.store.coordinated_organizations(coordinator) == sorted(organizations)


def test_a_user_who_coordinates_nothing_has_no_organisation(world):
    assert world.store.coordinated_organizations(world.add_coordinator()) == []
    assert world.store.coordinated_organizations(uuid.uuid4()) == []
