"""Google Cloud's APIs, stood in for on loopback, for the deployment rehearsal
(tools/rehearse_deploy.py) and `make verify-deployment`'s registration checks.

One stateful server answers what the installed gcloud asks when it runs
cloudbuild.yaml's steps (`CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>` points each API
here): Cloud Functions v2 (the upload URL, the upload, create, patch, operations),
Cloud Run's invoker policy, Service Usage, Resource Manager, Cloud Build, Cloud
Storage (what `gcloud builds submit` uploads), Cloud Scheduler, Cloud Logging's
metrics and Cloud Monitoring's alert policies, over REST; and the alert policies
again over gRPC, the one transport of Google's Python Monitoring client.

It refuses what Google documents as refused, each rule beside the page it comes
from; whatever it is not told about it accepts, so a rehearsal proves what these
rules and gcloud's own client side prove, not more (docs/deploying.md).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import re
import threading
import uuid
import zipfile
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import grpc
from google.cloud import monitoring_v3

# The APIs gcloud is pointed here for (CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>).
APIS = (
    "CLOUDFUNCTIONS",
    "RUN",
    "SERVICEUSAGE",
    "CLOUDRESOURCEMANAGER",
    "CLOUDBUILD",
    "STORAGE",
    "CLOUDSCHEDULER",
    "LOGGING",
    "MONITORING",
    "IAM",
    "ARTIFACTREGISTRY",
    "SECRETMANAGER",
)
PROJECT_NUMBER = "100000000001"
RUNTIMES = ("python310", "python311", "python312", "python313")

Json = dict[str, Any]
V = TypeVar("V")


class Refused(Exception):
    """A request Google refuses: HTTP status and message, as its APIs answer."""

    def __init__(self, status: int, message: str, reason: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


# --- the platform's rules ------------------------------------------------------------------

# Cloud Run functions (2nd gen) give a function CPU from its memory when none is set
# ("Configure memory limits" and "Configure CPU limits" of Cloud Run functions).
DEFAULT_CPU_FOR_MEMORY_MIB = {128: "0.083", 256: "0.167", 512: "0.333", 1024: "0.583", 2048: "1", 4096: "2"}
DEFAULT_CPU_FOR_MEMORY_MIB |= {8192: "2", 16384: "4", 32768: "8"}


def memory_mib(value: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi|M|G)", value)
    if not match:
        raise Refused(400, f"Invalid memory value: {value}")
    number, unit = int(match.group(1)), match.group(2)
    return number * 1024 if unit in ("Gi", "G") else number


def check_service_config(config: Json) -> None:
    """Cloud Run's limits on a function's instance, as a deploy meets them."""
    memory = memory_mib(config.get("availableMemory", "256Mi"))
    cpu_text = config.get("availableCpu") or DEFAULT_CPU_FOR_MEMORY_MIB.get(memory, "1")
    try:
        cpu = Decimal(cpu_text)
    except InvalidOperation as error:
        raise Refused(400, f"Invalid CPU value: {cpu_text}") from error
    concurrency = int(config.get("maxInstanceRequestConcurrency", 1))
    # https://cloud.google.com/run/docs/configuring/services/cpu: "0.08 to less than 1
    # in increments of 0.001", or a whole number of CPUs up to 8.
    fractional_ok = Decimal("0.08") <= cpu < 1 and cpu == cpu.quantize(Decimal("0.001"))
    if not (fractional_ok or (cpu == cpu.to_integral_value() and 1 <= cpu <= 8)):
        raise Refused(400, f"Invalid CPU value {cpu_text}: use 0.08 to 1 in steps of 0.001, or whole CPUs up to 8")
    # Same page: below 1 CPU, the maximum concurrency must be 1.
    if cpu < 1 and concurrency > 1:
        raise Refused(
            400, f"Total cpu < 1 is not supported with concurrency > 1 (cpu {cpu_text}, concurrency {concurrency})"
        )
    # Same page, "CPU and memory": over 512 MiB needs at least 0.5 CPU; over 1 GiB, at least 1.
    if memory > 512 and cpu < Decimal("0.5"):
        raise Refused(400, f"memory {memory}Mi needs at least 0.5 CPU, not {cpu_text}")
    if memory > 1024 and cpu < 1:
        raise Refused(400, f"memory {memory}Mi needs at least 1 CPU, not {cpu_text}")
    # Same page: 4 CPUs need at least 2 GiB, 6 and 8 CPUs at least 4 GiB.
    least_memory = {4: 2048, 6: 4096, 8: 4096}.get(int(cpu), 0) if cpu >= 1 else 0
    if memory < least_memory:
        raise Refused(400, f"{cpu_text} CPUs need at least {least_memory}Mi of memory, not {memory}Mi")
    # https://cloud.google.com/run/docs/about-concurrency: at most 1000 requests per instance.
    if not 1 <= concurrency <= 1000:
        raise Refused(400, f"maxInstanceRequestConcurrency must be 1 to 1000, not {concurrency}")
    # https://cloud.google.com/functions/docs/configuring/timeout: HTTP functions of
    # the 2nd generation run at most 60 minutes.
    if not 1 <= int(config.get("timeoutSeconds", 60)) <= 3600:
        raise Refused(400, f"timeoutSeconds must be 1 to 3600, not {config.get('timeoutSeconds')}")


def check_build_config(config: Json) -> None:
    # https://cloud.google.com/functions/docs/runtime-support: the runtimes listed by
    # `gcloud functions runtimes list`; python311 is one of them.
    if config.get("runtime") not in RUNTIMES:
        raise Refused(400, f"Runtime {config.get('runtime')} is not supported")


def seconds(duration: str) -> float:
    return float(duration.rstrip("s"))


def check_scheduler_job(job: Json) -> None:
    """Cloud Scheduler's ranges, from its REST reference
    (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs)."""
    # attemptDeadline: for HTTP targets, "the deadline must be in the interval [15 seconds, 30 minutes]".
    if "attemptDeadline" in job and not 15 <= seconds(job["attemptDeadline"]) <= 1800:
        raise Refused(400, f"attemptDeadline must be between 15s and 1800s, not {job['attemptDeadline']}")
    retry = job.get("retryConfig", {})
    # retryCount: "The value of retryCount must be between 0 and 5 inclusive" (RetryConfig).
    if not 0 <= int(retry.get("retryCount", 0)) <= 5:
        raise Refused(400, f"retryCount must be 0 to 5, not {retry.get('retryCount')}")
    backoffs = retry.get("minBackoffDuration"), retry.get("maxBackoffDuration")
    if all(backoffs) and seconds(backoffs[0]) > seconds(backoffs[1]):
        raise Refused(400, "minBackoffDuration must not exceed maxBackoffDuration")
    if not job.get("schedule") or not job.get("timeZone"):
        raise Refused(400, "a job needs a schedule and a time zone")


# --- the server ----------------------------------------------------------------------------


@dataclass
class GoogleState:
    """What the stand-in holds, and what it was sent."""

    project: str
    functions: dict[str, Json] = field(default_factory=dict)
    function_sources: dict[str, bytes] = field(default_factory=dict)  # function id -> the zip gcloud uploaded
    invokers: dict[str, list[str]] = field(default_factory=dict)  # Cloud Run service -> members of roles/run.invoker
    jobs: dict[str, Json] = field(default_factory=dict)
    metrics: dict[str, Json] = field(default_factory=dict)
    policies: dict[str, Json] = field(default_factory=dict)
    builds: list[Json] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)  # bucket/object -> what was uploaded
    uploads: dict[str, bytes] = field(default_factory=dict)  # upload URL path -> body
    operations: dict[str, Json] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


class GoogleStandIn:
    def __init__(self, project: str = "rehearsal-project") -> None:
        self.state = GoogleState(project)
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        self._add_routes()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer = stand_in.handle(self.command, self.path, body, headers)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.grpc = grpc.server(futures.ThreadPoolExecutor(2))
        self.grpc.add_generic_rpc_handlers((self._monitoring_grpc(),))
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.grpc.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.grpc.stop(0)

    def gcloud_environment(self, config_dir: str) -> dict[str, str]:
        """What makes the installed gcloud talk to this server and nothing else."""
        environment = {
            "CLOUDSDK_CONFIG": config_dir,
            "CLOUDSDK_AUTH_ACCESS_TOKEN": "rehearsal-token",
            "CLOUDSDK_CORE_PROJECT": self.state.project,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        }
        environment |= {f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": f"{self.url}/" for api in APIS}
        return environment

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(parts.path)
            if match and route_method == method:
                try:
                    with self._lock:
                        return 200, handler(*match.groups(), query=query, body=body, headers=headers)
                except Refused as error:
                    self.state.refused.append(f"{method} {parts.path}: {error}")
                    return error.status, {
                        "error": {"code": error.status, "message": str(error), "status": error.reason}
                    }
        return 404, {"error": {"code": 404, "message": f"no stand-in for {method} {parts.path}", "status": "NOT_FOUND"}}

    def _route(self, method: str, pattern: str, handler: Callable[..., Any]) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def _add_routes(self) -> None:
        location = r"/v2/projects/([^/]+)/locations/([^/]+)"
        self._route("GET", r"/v1/projects/([^/]+)", self._project)
        self._route("POST", r"/v1/projects/([^/:]+):getIamPolicy", lambda project, **_: {"bindings": []})
        self._route("GET", r"/v1/projects/([^/]+)/services/([^/]+)", self._service)
        self._route("GET", r"/v1/projects/([^/]+)/locations/([^/]+)/defaultServiceAccount", self._build_account)
        self._route("GET", location + r"/runtimes", self._runtimes)
        self._route("POST", location + r"/functions:generateUploadUrl", self._upload_url)
        self._route("PUT", r"/upload/([^/]+)", self._upload)
        self._route("GET", location + r"/functions/([^/:]+)", self._get_function)
        self._route("POST", location + r"/functions", self._create_function)
        self._route("PATCH", location + r"/functions/([^/:]+)", self._patch_function)
        self._route("GET", location + r"/operations/([^/]+)", self._operation)
        run_service = r"/v[12]/projects/([^/]+)/locations/([^/]+)/services/([^/:]+)"
        self._route("GET", run_service + ":getIamPolicy", self._get_invokers)
        self._route("POST", run_service + ":setIamPolicy", self._set_invokers)
        jobs = r"/v1/projects/([^/]+)/locations/([^/]+)/jobs"
        self._route("GET", jobs + r"/([^/:]+)", self._get_job)
        self._route("POST", jobs, self._create_job)
        self._route("PATCH", jobs + r"/([^/:]+)", self._patch_job)
        self._route("POST", jobs + r"/([^/:]+):resume", self._resume_job)
        self._route("POST", jobs + r"/([^/:]+):pause", self._pause_job)
        self._route("POST", jobs + r"/([^/:]+):run", self._run_job)
        metrics = r"/v2/projects/([^/]+)/metrics"
        self._route("GET", metrics + r"/([^/]+)", self._get_metric)
        self._route("POST", metrics, self._create_metric)
        self._route("PUT", metrics + r"/([^/]+)", self._update_metric)
        policies = r"/v3/projects/([^/]+)/alertPolicies"
        self._route("GET", policies, self._list_policies)
        self._route("POST", policies, self._create_policy)
        self._route("PATCH", policies + r"/([^/]+)", self._patch_policy)
        self._route("GET", r"/storage/v1/b", self._buckets)
        self._route("GET", r"/storage/v1/b/([^/]+)", self._bucket)
        self._route("POST", r"/storage/v1/b", lambda **kw: json.loads(kw["body"]))
        self._route("POST", r"/upload/storage/v1/b/([^/]+)/o", self._storage_upload)
        self._route("GET", r"/storage/v1/b/([^/]+)/o/(.+)", self._storage_object)
        self._route("POST", r"/v1/projects/([^/]+)/locations/([^/]+)/builds", self._create_build)
        self._route(
            "POST", r"/v1/projects/([^/]+)/builds", lambda project, **kw: self._create_build(project, "global", **kw)
        )

    @staticmethod
    def _held(resources: dict[str, V], key: str, what: str) -> V:
        """The resource the stand-in holds under `key`, or Google's 404 naming it."""
        if key not in resources:
            raise Refused(404, f"{what} not found", "NOT_FOUND")
        return resources[key]

    # --- project, services, accounts ------------------------------------------------------

    def _project(self, project: str, **_: Any) -> Json:
        return {"projectId": project, "projectNumber": PROJECT_NUMBER, "name": project, "lifecycleState": "ACTIVE"}

    def _service(self, project: str, service: str, **_: Any) -> Json:
        return {"name": f"projects/{PROJECT_NUMBER}/services/{service}", "state": "ENABLED"}

    def _build_account(self, project: str, location: str, **_: Any) -> Json:
        email = f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
        return {
            "name": f"projects/{project}/locations/{location}/defaultServiceAccount",
            "serviceAccountEmail": f"projects/{project}/serviceAccounts/{email}",
        }

    # --- Cloud Functions v2 ---------------------------------------------------------------

    def _runtimes(self, project: str, location: str, **_: Any) -> Json:
        return {
            "runtimes": [
                {"name": name, "stage": "GA", "environment": "GEN_2", "displayName": name} for name in RUNTIMES
            ]
        }

    def _upload_url(self, project: str, location: str, **_: Any) -> Json:
        name = f"source-{uuid.uuid4().hex}.zip"
        return {
            "uploadUrl": f"{self.url}/upload/{name}",
            "storageSource": {"bucket": f"gcf-v2-uploads-{project}", "object": name},
        }

    def _upload(self, name: str, body: bytes, **_: Any) -> Json:
        self.state.uploads[name] = body
        return {}

    def _get_function(self, project: str, location: str, function_id: str, **_: Any) -> Json:
        name = f"Function [projects/{project}/locations/{location}/functions/{function_id}]"
        return self._held(self.state.functions, function_id, name)

    def _store_function(self, project: str, location: str, function_id: str, function: Json) -> Json:
        check_build_config(function.get("buildConfig", {}))
        check_service_config(function.get("serviceConfig", {}))
        source = function["buildConfig"]["source"]["storageSource"]["object"]
        self.state.function_sources[function_id] = self.state.uploads[source]
        name = f"projects/{project}/locations/{location}/functions/{function_id}"
        url = f"https://{location}-{project}.cloudfunctions.net/{function_id}"
        function |= {"name": name, "state": "ACTIVE", "environment": "GEN_2", "url": url}
        function["serviceConfig"] |= {
            "uri": url,
            "service": f"projects/{project}/locations/{location}/services/{function_id}",
        }
        self.state.functions[function_id] = function
        return self._done(project, location, function)

    def _create_function(self, project: str, location: str, query: dict[str, str], body: bytes, **_: Any) -> Json:
        function_id = query["functionId"]
        if function_id in self.state.functions:
            raise Refused(409, f"Function {function_id} already exists", "ALREADY_EXISTS")
        return self._store_function(project, location, function_id, json.loads(body))

    def _patch_function(
        self, project: str, location: str, function_id: str, query: dict[str, str], body: bytes, **_: Any
    ) -> Json:
        current = copy.deepcopy(self._get_function(project, location, function_id))
        apply_update_mask(current, json.loads(body), query.get("updateMask", ""))
        return self._store_function(project, location, function_id, current)

    def _done(self, project: str, location: str, function: Json) -> Json:
        name = f"projects/{project}/locations/{location}/operations/operation-{uuid.uuid4().hex}"
        response = {"@type": "type.googleapis.com/google.cloud.functions.v2.Function", **function}
        metadata = {
            "@type": "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
            "target": function["name"],
            "stages": [{"name": stage, "state": "COMPLETE"} for stage in ("BUILD", "SERVICE")],
        }
        operation = {"name": name, "done": True, "metadata": metadata, "response": response}
        self.state.operations[name.rsplit("/", 1)[1]] = operation
        return operation

    def _operation(self, project: str, location: str, operation_id: str, **_: Any) -> Json:
        return self._held(self.state.operations, operation_id, f"Operation {operation_id}")

    def _get_invokers(self, project: str, location: str, service: str, **_: Any) -> Json:
        members = self.state.invokers.get(service, [])
        return {
            "version": 1,
            "bindings": [{"role": "roles/run.invoker", "members": members}] if members else [],
            "etag": "BwY=",
        }

    def _set_invokers(self, project: str, location: str, service: str, body: bytes, **_: Any) -> Json:
        policy: Json = json.loads(body)["policy"]
        members = [m for b in policy.get("bindings", []) if b["role"] == "roles/run.invoker" for m in b["members"]]
        self.state.invokers[service] = members
        return policy

    # --- Cloud Scheduler ------------------------------------------------------------------

    def _get_job(self, project: str, location: str, job_id: str, **_: Any) -> Json:
        return self._held(self.state.jobs, job_id, f"Job projects/{project}/locations/{location}/jobs/{job_id}")

    def _create_job(self, project: str, location: str, body: bytes, **_: Any) -> Json:
        job: Json = json.loads(body)
        job_id = job["name"].rsplit("/", 1)[1]
        if job_id in self.state.jobs:
            raise Refused(409, f"Job {job_id} already exists", "ALREADY_EXISTS")
        check_scheduler_job(job)
        job |= {"state": "ENABLED", "userUpdateTime": "2026-12-03T00:00:00Z"}
        self.state.jobs[job_id] = job
        return job

    def _patch_job(
        self, project: str, location: str, job_id: str, query: dict[str, str], body: bytes, **_: Any
    ) -> Json:
        job = copy.deepcopy(self._get_job(project, location, job_id))
        apply_update_mask(job, json.loads(body), query.get("updateMask", ""))
        check_scheduler_job(job)
        self.state.jobs[job_id] = job
        return job

    def _resume_job(self, project: str, location: str, job_id: str, **_: Any) -> Json:
        self._get_job(project, location, job_id)["state"] = "ENABLED"
        return self.state.jobs[job_id]

    def _run_job(self, project: str, location: str, job_id: str, **_: Any) -> Json:
        """`gcloud scheduler jobs run`: an attempt now, which the stand-in records as succeeded."""
        job = self._get_job(project, location, job_id)
        job |= {"lastAttemptTime": "2026-12-03T01:15:00Z", "status": {}}
        return job

    def _pause_job(self, project: str, location: str, job_id: str, **_: Any) -> Json:
        self._get_job(project, location, job_id)["state"] = "PAUSED"
        return self.state.jobs[job_id]

    # --- Cloud Logging metrics ------------------------------------------------------------

    def _get_metric(self, project: str, name: str, **_: Any) -> Json:
        return self._held(self.state.metrics, name, f"Metric {name}")

    def _create_metric(self, project: str, body: bytes, **_: Any) -> Json:
        metric: Json = json.loads(body)
        if metric["name"] in self.state.metrics:
            raise Refused(409, f"Metric {metric['name']} already exists", "ALREADY_EXISTS")
        self.state.metrics[metric["name"]] = metric
        return metric

    def _update_metric(self, project: str, name: str, body: bytes, **_: Any) -> Json:
        self._get_metric(project, name)
        self.state.metrics[name] = json.loads(body) | {"name": name}
        return self.state.metrics[name]

    # --- Cloud Monitoring alert policies --------------------------------------------------

    def _list_policies(self, project: str, query: dict[str, str], **_: Any) -> Json:
        wanted = re.search(r'displayName\s*=\s*"([^"]*)"', query.get("filter", ""))
        policies = [p for p in self.state.policies.values() if not wanted or p.get("displayName") == wanted.group(1)]
        return {"alertPolicies": policies} if policies else {}

    def _create_policy(self, project: str, body: bytes, **_: Any) -> Json:
        policy: Json = json.loads(body)
        check_alert_policy(policy)
        name = f"projects/{project}/alertPolicies/{len(self.state.policies) + 1}"
        policy["name"] = name
        for number, condition in enumerate(policy.get("conditions", []), 1):
            condition["name"] = f"{name}/conditions/{number}"
        self.state.policies[name] = policy
        return policy

    def _patch_policy(self, project: str, policy_id: str, query: dict[str, str], body: bytes, **_: Any) -> Json:
        name = f"projects/{project}/alertPolicies/{policy_id}"
        held = self._held(self.state.policies, name, f"Alert policy {name}")
        sent: Json = json.loads(body)
        mask = query.get("updateMask", "")
        policy = copy.deepcopy(held) if mask else sent  # no mask: the policy sent replaces it
        apply_update_mask(policy, sent, mask)
        policy["name"] = name
        check_alert_policy(policy)
        self.state.policies[name] = policy
        return policy

    def _monitoring_grpc(self) -> grpc.GenericRpcHandler:
        def list_policies(
            request: monitoring_v3.ListAlertPoliciesRequest, context: Any
        ) -> monitoring_v3.ListAlertPoliciesResponse:
            wanted = re.search(r'display_name\s*=\s*"([^"]*)"', request.filter)
            with self._lock:
                held = [
                    p for p in self.state.policies.values() if not wanted or p.get("displayName") == wanted.group(1)
                ]
                policies = [
                    monitoring_v3.AlertPolicy.from_json(json.dumps(p), ignore_unknown_fields=True) for p in held
                ]
            return monitoring_v3.ListAlertPoliciesResponse(alert_policies=policies)

        return grpc.method_handlers_generic_handler(
            "google.monitoring.v3.AlertPolicyService",
            {
                "ListAlertPolicies": grpc.unary_unary_rpc_method_handler(
                    list_policies,
                    request_deserializer=monitoring_v3.ListAlertPoliciesRequest.deserialize,
                    response_serializer=monitoring_v3.ListAlertPoliciesResponse.serialize,
                )
            },
        )

    # --- Cloud Storage and Cloud Build (gcloud builds submit) -----------------------------

    def _buckets(self, **_: Any) -> Json:
        """The project's buckets: the one `gcloud builds submit` stages its source in."""
        return {"kind": "storage#buckets", "items": [self._bucket(f"{self.state.project}_cloudbuild")]}

    def _bucket(self, bucket: str, **_: Any) -> Json:
        return {"id": bucket, "name": bucket, "location": "US", "projectNumber": PROJECT_NUMBER}

    def _storage_upload(
        self, bucket: str, query: dict[str, str], body: bytes, headers: dict[str, str], **_: Any
    ) -> Json:
        name, data = query.get("name", ""), body
        content_type = headers.get("content-type", "")
        if content_type.startswith("multipart/related"):  # JSON metadata, then the object's bytes
            metadata, data = multipart_parts(body, content_type.split("boundary=")[1].strip("'\""))
            name = json.loads(metadata).get("name", name)
        self.state.objects[f"{bucket}/{name}"] = data
        return self._object(bucket, name, data)

    @staticmethod
    def _object(bucket: str, name: str, data: bytes) -> Json:
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - Cloud Storage's own checksum
        return {"bucket": bucket, "name": name, "size": str(len(data)), "md5Hash": md5, "generation": "1"}

    def _storage_object(self, bucket: str, name: str, **_: Any) -> Json:
        key = f"{bucket}/{name}"
        return self._object(bucket, name, self._held(self.state.objects, key, f"Object {key}"))

    def _create_build(self, project: str, location: str, body: bytes, **_: Any) -> Json:
        build = json.loads(body) | {"id": uuid.uuid4().hex, "status": "QUEUED", "projectId": project}
        self.state.builds.append(build)
        return {
            "name": f"projects/{project}/operations/build-{build['id']}",
            "metadata": {
                "@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                "build": build,
            },
        }

    # --- what a test or the rehearsal reads back -------------------------------------------

    def clients(self) -> Any:
        """`make verify-deployment`'s Google clients, pointed here: Cloud Scheduler and
        Cloud Logging over REST, Cloud Monitoring over gRPC (its Python client's only transport)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import logging as cloud_logging
        from google.cloud import scheduler_v1
        from google.cloud.monitoring_v3.services.alert_policy_service.transports import (
            AlertPolicyServiceGrpcTransport,
        )

        from tools.registrations import Clients

        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth's, untyped
        options = {"api_endpoint": self.url}
        return Clients(
            lambda: scheduler_v1.CloudSchedulerClient(credentials=anonymous, transport="rest", client_options=options),
            lambda project: cloud_logging.Client(  # type: ignore[no-untyped-call]  # google-cloud-logging's, untyped
                project=project, credentials=anonymous, _use_grpc=False, client_options=options
            ),
            lambda: monitoring_v3.AlertPolicyServiceClient(
                transport=AlertPolicyServiceGrpcTransport(channel=grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}"))
            ),
        )

    def source_files(self, function_id: str) -> list[str]:
        """The names in the zip gcloud uploaded for the function."""
        with zipfile.ZipFile(io.BytesIO(self.state.function_sources[function_id])) as archive:
            return sorted(archive.namelist())


def multipart_parts(body: bytes, boundary: str) -> list[bytes]:
    """The contents of a multipart body's parts, byte for byte (a binary part must
    not go through a text parser). gcloud ends its header lines with a bare LF."""
    contents = []
    for part in body.split(b"--" + boundary.encode())[1:-1]:
        ends = [(part.find(gap), gap) for gap in (b"\r\n\r\n", b"\n\n") if part.find(gap) >= 0]
        at, gap = min(ends)
        content = part[at + len(gap) :]
        contents.append(content[:-2] if content.endswith(b"\r\n") else content.removesuffix(b"\n"))
    return contents


def apply_update_mask(held: Json, sent: Json, mask: str) -> None:
    """A PATCH's fields (`updateMask`, in snake or camel case) copied from what was sent
    onto what is held; a field named but not sent is cleared, as Google's APIs do."""
    for path in filter(None, mask.split(",")):
        source, target = sent, held
        *parents, leaf = [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in path.split(".")]
        for parent in parents:
            source, target = source.get(parent, {}), target.setdefault(parent, {})
        if leaf in source:
            target[leaf] = source[leaf]
        else:
            target.pop(leaf, None)


def check_alert_policy(policy: Json) -> None:
    # https://cloud.google.com/monitoring/alerts/log-based-alerts: a policy with a
    # log-match condition must set alertStrategy.notificationRateLimit.
    log_match = any("conditionMatchedLog" in c for c in policy.get("conditions", []))
    if log_match and not policy.get("alertStrategy", {}).get("notificationRateLimit"):
        raise Refused(400, "a log-match condition needs alertStrategy.notificationRateLimit")
    # https://cloud.google.com/monitoring/alerts/concepts-indepth: a metric-absence
    # duration is at least 120 s and at most 23.5 hours.
    for condition in policy.get("conditions", []):
        absent = condition.get("conditionAbsent")
        if absent and not 120 <= seconds(absent.get("duration", "0s")) <= 84600:
            raise Refused(400, f"absence duration must be 120s to 84600s, not {absent.get('duration')}")
