"""The ARM test server's scenarios: what environments/local.yaml (healthy) and local-broken.yaml (broken) point at.

    ArmServer(18480, cert, key, local_state(), token)     # both resource groups on one server

Every broken resource breaks one predicate of DESIGN.md where it can, so each test names the predicate it proves.
Shapes follow the REST API examples (ContainerApps_Get, Revisions_Get/List, sites, sites/deployments, sites/functions,
sites/config/appsettings/list; Microsoft.ApiManagement 2024-05-01 ApiManagementServiceGetService, GetApiContract,
ListApiRevisions, ListApiReleases, ListApiOperations). Times are relative to `now`, so "deployed 20 minutes ago" stays
true whatever the date.

API Management (checks.apim): `apim-demo` in rg-demo fronts the container apps `orders` (revision 3 current, released
as 3.4.0 with `;rev=3` in the release's apiId, as `az apim api release create` writes it) and `pricing` (revision 1,
one release without an apiId, as the spec's ListApiReleases example has it). rg-broken holds `apim-broken`, one API
per way an API goes wrong (`BROKEN_APIS`), and two services that are not provisioned: `apim-updating` (Updating) and
`apim-failed` (Failed).

App settings carry secrets as real ones do (a storage connection string with its key, a package URL with a SAS
signature: `SECRET_MARKERS`), so that tests can prove no message or attachment ever shows them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
HEALTHY_GROUP = "rg-demo"
BROKEN_GROUP = "rg-broken"
LOCATION = "West Europe"
ENVIRONMENT = "cae-demo"
RELEASED_IMAGE = "registry.example.test/orders/api:3.4.0"
STALE_IMAGE = "registry.example.test/orders/api:3.3.9"
PREVIOUS_IMAGE = "registry.example.test/orders/api:3.3.9"  # what the revision before the release ran
PRICING_IMAGE = "registry.example.test/pricing/api:5.2.0"
PRICING_PREVIOUS_IMAGE = "registry.example.test/pricing/api:5.1.3"
FUNCTIONS_VERSION = "2.7.1"
FUNCTIONS_PREVIOUS_VERSION = "2.6.0"
# Kudu's DeployStatus: 0 Pending, 1 Building, 2 Deploying, 3 Failed, 4 Success.
KUDU_FAILED, KUDU_SUCCESS = 3, 4
CRASH_MESSAGE = (
    "ContainerCrashing: Container 'api' was terminated with exit code '1' and reason 'ProcessExited'. "
    "The revision failed to start; check the console logs of orders-crashing--v8."
)
PROVISIONING_GETS = 3  # orders-provisioning's latest revision answers Provisioning to this many GETs, then Provisioned
STORAGE_KEY = "c2VjcmV0LXN0b3JhZ2Uta2V5LW5ldmVyLWluLWV2aWRlbmNl"  # a fake, but it must never leak
PACKAGE_SIGNATURE = "sig=Zm9yYmlkZGVuLXNhcy1zaWduYXR1cmU%3D"
SECRET_MARKERS = (STORAGE_KEY, PACKAGE_SIGNATURE.removeprefix("sig="))
CONTAINER_APPS_DOMAIN = "kindpebble-0a1b2c3d.westeurope.azurecontainerapps.io"  # the managed environment's domain
APIM_SERVICE = "apim-demo"
APIM_BROKEN = "apim-broken"
APIM_UPDATING = "apim-updating"
APIM_FAILED = "apim-failed"
APIM_VERSION = "3.4.0"  # what the orders API's newest release notes name (the orders release)
LEGACY_BACKEND = "https://orders-legacy.internal.example.test/api"  # where orders-wrong-backend still points
REVISION_DAYS = 2  # revision n of an API was created this many days before revision n + 1
# apim-broken's APIs, each wrong in one way (the environment's expectation in brackets):
BROKEN_APIS = {
    "orders-not-current": "revision 2 is current, revision 3 exists but was never made current [revision 3]",
    "orders-offline": "the current revision 3 is offline",
    "orders-stale-release": "the newest release is of revision 2; revision 3 was made current without one",
    "orders-unnoted": "the newest release's notes do not name the released version [version_in_notes]",
    "orders-wrong-backend": f"serviceUrl {LEGACY_BACKEND} [fronts orders-crashing]",
    "orders-no-operations": "no operations: the gateway answers 404 to every call",
}
# The orders API's operations (ListApiOperations' shape): method, urlTemplate, displayName.
ORDERS_OPERATIONS = {
    "list-orders": ("GET", "/orders", "List orders"),
    "get-order": ("GET", "/orders/{orderId}", "Get an order"),
    "create-order": ("POST", "/orders", "Create an order"),
}
PRICING_OPERATIONS = {"get-price": ("GET", "/prices/{sku}", "Get the price of a SKU")}

Json = dict[str, Any]


def healthy_state(now: dt.datetime | None = None) -> Json:
    """rg-demo: `orders` (single revision, all traffic to latest), `pricing` (80/20), function app `orders-events`."""
    now = now or dt.datetime.now(dt.UTC)
    scene = _Scene(HEALTHY_GROUP, now)
    scene.container_app(
        "orders", RELEASED_IMAGE, latest="orders--v7", traffic=[{"latestRevision": True, "weight": 100}]
    )
    scene.revision("orders", "orders--v7", RELEASED_IMAGE, replicas=2, weight=100, age_minutes=25)
    scene.revision("orders", "orders--v6", PREVIOUS_IMAGE, replicas=0, weight=0, active=False, age_minutes=1560)
    split = [{"revisionName": "pricing--v12", "weight": 80}, {"revisionName": "pricing--v11", "weight": 20}]
    scene.container_app("pricing", PRICING_IMAGE, latest="pricing--v12", traffic=split, mode="Multiple")
    scene.revision("pricing", "pricing--v12", PRICING_IMAGE, replicas=2, weight=80, age_minutes=40)
    scene.revision("pricing", "pricing--v11", PRICING_PREVIOUS_IMAGE, replicas=1, weight=20, age_minutes=3000)
    scene.function_app("orders-events")
    scene.deployment("orders-events", FUNCTIONS_VERSION, KUDU_SUCCESS, active=True, age_minutes=20)
    scene.deployment("orders-events", FUNCTIONS_PREVIOUS_VERSION, KUDU_SUCCESS, active=False, age_minutes=4320)
    scene.functions("orders-events")

    # API Management in front of both container apps.
    scene.apim_service(APIM_SERVICE)
    scene.api(APIM_SERVICE, "orders", current=3, service_url=f"https://{app_fqdn('orders')}/api")
    two_days = REVISION_DAYS * 1440
    scene.api_release(APIM_SERVICE, "orders", "orders-3-3-9", revision=2, notes="orders 3.3.9", age_minutes=two_days)
    notes = f"orders {APIM_VERSION}: order history endpoint"
    scene.api_release(APIM_SERVICE, "orders", "orders-3-4-0", revision=3, notes=notes, age_minutes=20)
    pricing_url = f"https://{app_fqdn('pricing')}"
    scene.api(APIM_SERVICE, "pricing", current=1, service_url=pricing_url, operations=PRICING_OPERATIONS)
    scene.api_release(APIM_SERVICE, "pricing", "pricing-5-2-0", revision=None, notes="pricing 5.2.0", age_minutes=25)
    return scene.state()


def broken_state(now: dt.datetime | None = None) -> Json:
    """rg-broken: one container app or function app per way a deployment goes wrong."""
    now = now or dt.datetime.now(dt.UTC)
    scene = _Scene(BROKEN_GROUP, now)
    latest = [{"latestRevision": True, "weight": 100}]

    # The revision never started, yet the app says Succeeded: "deploy succeeded while the container never started".
    # In single-revision mode the previous revision keeps serving until a new one is ready.
    crashing = "orders-crashing--v8"
    scene.container_app("orders-crashing", RELEASED_IMAGE, latest=crashing, ready="orders-crashing--v7", traffic=latest)
    scene.revision(
        "orders-crashing",
        crashing,
        RELEASED_IMAGE,
        replicas=0,
        weight=0,
        age_minutes=12,
        health="Unhealthy",
        provisioning="Failed",
        running="Failed",
        error=CRASH_MESSAGE,
    )
    scene.revision("orders-crashing", "orders-crashing--v7", PREVIOUS_IMAGE, replicas=2, weight=100, age_minutes=1800)

    # The new revision is healthy but receives no traffic: the old one still takes 100%.
    old_traffic = [
        {"revisionName": "orders-old-traffic--v6", "weight": 100},
        {"revisionName": "orders-old-traffic--v7", "weight": 0},
    ]
    scene.container_app(
        "orders-old-traffic", RELEASED_IMAGE, latest="orders-old-traffic--v7", traffic=old_traffic, mode="Multiple"
    )
    scene.revision("orders-old-traffic", "orders-old-traffic--v7", RELEASED_IMAGE, replicas=1, weight=0, age_minutes=15)
    scene.revision(
        "orders-old-traffic", "orders-old-traffic--v6", PREVIOUS_IMAGE, replicas=2, weight=100, age_minutes=2880
    )

    # Healthy in every way, but running last release's image.
    scene.container_app("orders-stale-image", STALE_IMAGE, latest="orders-stale-image--v6", traffic=latest)
    scene.revision(
        "orders-stale-image", "orders-stale-image--v6", STALE_IMAGE, replicas=2, weight=100, age_minutes=2880
    )

    # The last update of the app failed; the revision from before it still runs.
    scene.container_app(
        "orders-failed", RELEASED_IMAGE, latest="orders-failed--v7", traffic=latest, provisioning="Failed"
    )
    scene.revision("orders-failed", "orders-failed--v7", RELEASED_IMAGE, replicas=2, weight=100, age_minutes=30)

    # Still rolling out: the new revision answers Provisioning to PROVISIONING_GETS GETs, then Provisioned, and takes
    # the traffic from the old one then; the app finishes after as many GETs of its own.
    rolling, previous = "orders-provisioning--v8", "orders-provisioning--v7"
    scene.container_app(
        "orders-provisioning",
        RELEASED_IMAGE,
        latest=rolling,
        ready=previous,
        traffic=latest,
        provisioning="InProgress",
        running="Progressing",
    )
    scene.revision(
        "orders-provisioning",
        rolling,
        RELEASED_IMAGE,
        replicas=0,
        weight=0,
        age_minutes=1,
        health="None",
        provisioning="Provisioning",
        running="Processing",
    )
    scene.revision("orders-provisioning", previous, PREVIOUS_IMAGE, replicas=2, weight=100, age_minutes=1800)
    waiting: list[Json] = [{}] * PROVISIONING_GETS
    ready = {
        "provisioningState": "Provisioned",
        "healthState": "Healthy",
        "runningState": "Running",
        "replicas": 1,
        "trafficWeight": 100,
    }
    scene.sequence(scene.revision_id("orders-provisioning", rolling), [*waiting, {"properties": ready}])
    retired = {"active": False, "replicas": 0, "trafficWeight": 0, "healthState": "None", "runningState": "Stopped"}
    scene.sequence(
        scene.revision_id("orders-provisioning", previous),
        [*waiting, {"properties": retired}],
        clock=scene.revision_id("orders-provisioning", rolling),
    )
    app_ready = {"provisioningState": "Succeeded", "runningStatus": "Running", "latestReadyRevisionName": rolling}
    scene.sequence(scene.app_id("orders-provisioning"), [*waiting, {"properties": app_ready}])

    # Provisioned, but no replica is up although the scale rule asks for one.
    scene.container_app("orders-unhealthy", RELEASED_IMAGE, latest="orders-unhealthy--v7", traffic=latest)
    scene.revision(
        "orders-unhealthy",
        "orders-unhealthy--v7",
        RELEASED_IMAGE,
        replicas=0,
        weight=100,
        health="Unhealthy",
        running="Degraded",
        age_minutes=18,
    )

    # Function apps: the deployment failed; the app is stopped; deployed but no function loaded; the old version.
    scene.function_app("events-failed-deploy")
    scene.deployment(
        "events-failed-deploy",
        FUNCTIONS_VERSION,
        KUDU_FAILED,
        active=False,
        age_minutes=14,
        message=f"events-failed-deploy {FUNCTIONS_VERSION}: Deployment Failed. Error: Oryx build "
        "failed: requirements.txt: No matching distribution found for orders-sdk==9.9.9",
    )
    scene.deployment("events-failed-deploy", FUNCTIONS_PREVIOUS_VERSION, KUDU_SUCCESS, active=True, age_minutes=4320)
    scene.functions("events-failed-deploy")

    scene.function_app("events-stopped", state="Stopped")
    scene.deployment("events-stopped", FUNCTIONS_VERSION, KUDU_SUCCESS, active=True, age_minutes=22)
    scene.functions("events-stopped")

    scene.function_app("events-no-functions")
    scene.deployment("events-no-functions", FUNCTIONS_VERSION, KUDU_SUCCESS, active=True, age_minutes=16)

    scene.function_app("events-old-version", version=FUNCTIONS_PREVIOUS_VERSION)
    scene.deployment("events-old-version", FUNCTIONS_PREVIOUS_VERSION, KUDU_SUCCESS, active=True, age_minutes=4320)
    scene.functions("events-old-version")
    _broken_apis(scene)
    return scene.state()


def _broken_apis(scene: _Scene) -> None:
    """apim-broken: one API per entry of BROKEN_APIS; apim-updating and apim-failed: services not provisioned."""
    service, two_days = APIM_BROKEN, REVISION_DAYS * 1440
    scene.apim_service(service)
    orders_url = f"https://{app_fqdn('orders-crashing')}/api"

    scene.api(service, "orders-not-current", current=2, revisions=3, service_url=orders_url)
    scene.api_release(service, "orders-not-current", "v2", revision=2, notes="orders 3.3.9", age_minutes=two_days)

    scene.api(service, "orders-offline", current=3, offline={3}, service_url=orders_url)
    scene.api_release(service, "orders-offline", "v3", revision=3, notes=f"orders {APIM_VERSION}", age_minutes=20)

    scene.api(service, "orders-stale-release", current=3, service_url=orders_url)
    scene.api_release(service, "orders-stale-release", "v2", revision=2, notes="orders 3.3.9", age_minutes=two_days)

    scene.api(service, "orders-unnoted", current=3, service_url=orders_url)
    notes = "hotfix for checkout timeouts"
    scene.api_release(service, "orders-unnoted", "v3", revision=3, notes=notes, age_minutes=20)

    scene.api(service, "orders-wrong-backend", current=1, service_url=LEGACY_BACKEND)
    scene.api(service, "orders-no-operations", current=1, service_url=orders_url, operations={})

    scene.apim_service(APIM_UPDATING, provisioning="Updating", target="Succeeded")
    scene.api(APIM_UPDATING, "orders", current=1, service_url=orders_url)
    scene.apim_service(APIM_FAILED, provisioning="Failed")
    scene.api(APIM_FAILED, "orders", current=1, service_url=orders_url)


def app_fqdn(app: str) -> str:
    """The ingress FQDN ARM gives a container app of the testbed's managed environment."""
    return f"{app}.{CONTAINER_APPS_DOMAIN}"


def local_state(now: dt.datetime | None = None) -> Json:
    """Both resource groups, for the one server the local testbed runs."""
    now = now or dt.datetime.now(dt.UTC)
    return {"resources": {**healthy_state(now)["resources"], **broken_state(now)["resources"]}}


class _Scene:
    """Builds the documents of one resource group, in the order lists will return them."""

    def __init__(self, group: str, now: dt.datetime) -> None:
        self.group, self.now = group, now
        self.resources: dict[str, Json] = {}
        self.deployments: dict[str, int] = {}

    def state(self) -> Json:
        return {"resources": self.resources}

    def app_id(self, app: str) -> str:
        return f"{self._group_id}/providers/Microsoft.App/containerApps/{app}"

    def revision_id(self, app: str, revision: str) -> str:
        return f"{self.app_id(app)}/revisions/{revision}"

    def site_id(self, site: str) -> str:
        return f"{self._group_id}/providers/Microsoft.Web/sites/{site}"

    @property
    def _group_id(self) -> str:
        return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{self.group}"

    def sequence(self, resource_id: str, steps: list[Json], *, clock: str | None = None) -> None:
        """Scripted progress (see testbed.arm): one step per GET of the resource, or of `clock`."""
        self.resources[resource_id]["_sequence"] = steps
        if clock is not None:
            self.resources[resource_id]["_clock"] = clock

    def container_app(
        self,
        app: str,
        image: str,
        *,
        latest: str,
        traffic: list[Json],
        ready: str | None = None,
        mode: str = "Single",
        provisioning: str = "Succeeded",
        running: str = "Running",
        min_replicas: int = 1,
    ) -> None:
        environment = f"{self._group_id}/providers/Microsoft.App/managedEnvironments/{ENVIRONMENT}"
        fqdn = app_fqdn(app)
        self.resources[self.app_id(app)] = {
            "id": self.app_id(app),
            "name": app,
            "type": "Microsoft.App/containerApps",
            "location": LOCATION,
            "tags": {"team": "orders"},
            "systemData": {"lastModifiedBy": "ci@example.test", "lastModifiedAt": self._time(20)},
            "properties": {
                "provisioningState": provisioning,
                "runningStatus": running,
                "managedEnvironmentId": environment,
                "environmentId": environment,
                "workloadProfileName": "Consumption",
                "latestRevisionName": latest,
                "latestReadyRevisionName": ready or latest,
                "latestRevisionFqdn": app_fqdn(latest),
                "customDomainVerificationId": "5F2C1A0B9E8D7C6B5A49382716051F2E3D4C5B6A79880716253F4E3D2C1B0A99",
                "outboundIpAddresses": ["20.4.8.16"],
                "configuration": {
                    "activeRevisionsMode": mode,
                    "maxInactiveRevisions": 100,
                    "ingress": {
                        "fqdn": fqdn,
                        "external": True,
                        "targetPort": 8080,
                        "transport": "Auto",
                        "allowInsecure": False,
                        "traffic": traffic,
                    },
                },
                "template": self._template(image, latest, min_replicas),
                "eventStreamEndpoint": f"https://westeurope.azurecontainerapps.dev/subscriptions/{SUBSCRIPTION}/"
                f"resourceGroups/{self.group}/containerApps/{app}/eventstream",
            },
        }

    def revision(
        self,
        app: str,
        revision: str,
        image: str,
        *,
        replicas: int,
        weight: int,
        age_minutes: int,
        active: bool = True,
        provisioning: str = "Provisioned",
        health: str = "Healthy",
        running: str = "Running",
        error: str | None = None,
        min_replicas: int = 1,
    ) -> None:
        properties: Json = {
            "createdTime": self._time(age_minutes),
            "lastActiveTime": self._time(0 if active else age_minutes // 2),
            "fqdn": app_fqdn(revision),
            "template": self._template(image, revision, min_replicas),
            "active": active,
            "replicas": replicas,
            "trafficWeight": weight,
            "healthState": health if active else "None",
            "provisioningState": provisioning,
            "runningState": running if active else "Stopped",
        }
        if error is not None:
            properties["provisioningError"] = error
        self.resources[self.revision_id(app, revision)] = {
            "id": self.revision_id(app, revision),
            "name": revision,
            "type": "Microsoft.App/containerApps/revisions",
            "properties": properties,
        }

    def function_app(self, site: str, *, state: str = "Running", version: str = FUNCTIONS_VERSION) -> None:
        """A Linux function app running from a package URL; `version` is what its APP_VERSION setting, its `version`
        tag and its package name record."""
        host = f"{site}.azurewebsites.net"
        package = (
            f"https://stevents.blob.core.windows.net/packages/{site}-{version}.zip?sv=2022-11-02&se=2027-01-01T00%3A00"
            f"%3A00Z&sr=b&sp=r&{PACKAGE_SIGNATURE}"
        )
        self.resources[self.site_id(site)] = {
            "id": self.site_id(site),
            "name": site,
            "type": "Microsoft.Web/sites",
            "kind": "functionapp,linux",
            "location": LOCATION,
            "tags": {"team": "orders", "version": version},
            "_appsettings": {
                "FUNCTIONS_EXTENSION_VERSION": "~4",
                "FUNCTIONS_WORKER_RUNTIME": "python",
                "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=stevents;"
                f"AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net",
                "APP_VERSION": version,
                "WEBSITE_RUN_FROM_PACKAGE": package,
            },
            "properties": {
                "state": state,
                "hostNames": [host],
                "repositorySiteName": site,
                "usageState": "Normal",
                "enabled": True,
                "enabledHostNames": [host, f"{site}.scm.azurewebsites.net"],
                "availabilityState": "Normal",
                "serverFarmId": f"{self._group_id}/providers/Microsoft.Web/serverfarms/asp-{site}",
                "reserved": True,
                "lastModifiedTimeUtc": self._time(20),
                "httpsOnly": True,
                "defaultHostName": host,
                "resourceGroup": self.group,
                "siteConfig": {"linuxFxVersion": "Python|3.11", "numberOfWorkers": 1},
            },
        }

    def deployment(
        self,
        site: str,
        version: str,
        status: int,
        *,
        active: bool,
        age_minutes: int,
        message: str | None = None,
    ) -> None:
        """Kudu's deployment record as ARM proxies it: snake_case fields, newest first as Kudu lists them."""
        kudu_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.group}/{site}/{version}").hex
        resource_id = f"{self.site_id(site)}/deployments/{kudu_id}"
        self.resources[resource_id] = {
            "id": resource_id,
            "name": kudu_id,
            "type": "Microsoft.Web/sites/deployments",
            "kind": "functionapp",
            "properties": {
                "id": kudu_id,
                "status": status,
                "status_text": "" if status == KUDU_SUCCESS else "Deployment failed",
                "message": message or f"{site} {version} (ci build {4200 + age_minutes % 97})",
                "author": "ci",
                "author_email": "ci@example.test",
                "deployer": "ZipDeploy",
                "received_time": self._kudu_time(age_minutes + 2),
                "start_time": self._kudu_time(age_minutes + 2),
                "end_time": self._kudu_time(age_minutes),
                "last_success_end_time": self._kudu_time(age_minutes) if status == KUDU_SUCCESS else None,
                "complete": True,
                "active": active,
                "is_temp": False,
                "is_readonly": True,
                "details": f"https://{site}.scm.azurewebsites.net/api/deployments/{kudu_id}/log",
                "site_name": site,
            },
        }

    def functions(self, site: str) -> None:
        triggers = {
            "OrderCreated": {"type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "orders"},
            "OrderShipped": {"type": "eventGridTrigger", "direction": "in", "name": "event"},
            "Health": {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous"},
        }
        scm = f"https://{site}.scm.azurewebsites.net/api"
        for function, trigger in triggers.items():
            resource_id = f"{self.site_id(site)}/functions/{function}"
            properties: Json = {
                "name": function,
                "function_app_id": self.site_id(site),
                "script_root_path_href": f"{scm}/vfs/site/wwwroot/{function}/",
                "script_href": f"{scm}/vfs/site/wwwroot/function_app.py",
                "config_href": f"{scm}/vfs/site/wwwroot/{function}/function.json",
                "test_data_href": f"{scm}/vfs/data/Functions/sampledata/{function}.dat",
                "href": f"{scm}/functions/{function}",
                "config": {"bindings": [trigger]},
                "language": "python",
                "isDisabled": False,
            }
            if trigger["type"] == "httpTrigger":
                properties["invoke_url_template"] = f"https://{site}.azurewebsites.net/api/health"
            self.resources[resource_id] = {
                "id": resource_id,
                "name": f"{site}/{function}",  # ARM names a site's function "site/function"
                "type": "Microsoft.Web/sites/functions",
                "location": LOCATION,
                "properties": properties,
            }

    def service_id(self, service: str) -> str:
        return f"{self._group_id}/providers/Microsoft.ApiManagement/service/{service}"

    def api_id(self, service: str, api: str, revision: int | None = None) -> str:
        """`.../apis/orders` (the current revision), `.../apis/orders;rev=2` (any other), as ARM names them."""
        return f"{self.service_id(service)}/apis/{api}" + ("" if revision is None else f";rev={revision}")

    def apim_service(self, service: str, *, provisioning: str = "Succeeded", target: str = "") -> None:
        """ApiManagementServiceGetService's shape: a Developer-tier service with its built-in gateway host name."""
        host = f"{service}.azure-api.net"
        self.resources[self.service_id(service)] = {
            "id": self.service_id(service),
            "name": service,
            "type": "Microsoft.ApiManagement/service",
            "tags": {"team": "orders"},
            "location": LOCATION,
            "etag": "AAAAAAAWN/4=",
            "properties": {
                "publisherEmail": "platform@example.test",
                "publisherName": "Orders platform",
                "notificationSenderEmail": "apimgmt-noreply@mail.windowsazure.com",
                "provisioningState": provisioning,
                "targetProvisioningState": target,
                "createdAtUtc": self._apim_time(90 * 1440),
                "gatewayUrl": f"https://{host}",
                "gatewayRegionalUrl": f"https://{service}-westeurope-01.regional.azure-api.net",
                "portalUrl": f"https://{service}.portal.azure-api.net",
                "developerPortalUrl": f"https://{service}.developer.azure-api.net",
                "managementApiUrl": f"https://{service}.management.azure-api.net",
                "scmUrl": f"https://{service}.scm.azure-api.net",
                "hostnameConfigurations": [
                    {
                        "type": "Proxy",
                        "hostName": host,
                        "negotiateClientCertificate": False,
                        "defaultSslBinding": False,
                        "certificateSource": "BuiltIn",
                    }
                ],
                "publicIPAddresses": ["20.61.7.12"],
                "virtualNetworkType": "None",
                "disableGateway": False,
                "publicNetworkAccess": "Enabled",
                "platformVersion": "stv2",
            },
            "sku": {"name": "Developer", "capacity": 1},
            "systemData": {"lastModifiedBy": "ci@example.test", "lastModifiedByType": "User"},
        }

    def api(
        self,
        service: str,
        api: str,
        *,
        current: int,
        service_url: str | None,
        revisions: int | None = None,
        offline: set[int] | frozenset[int] = frozenset(),
        operations: dict[str, tuple[str, str, str]] | None = None,
    ) -> None:
        """Revisions 1..`revisions` (default: up to the current one) of an HTTP API (GetApiContract's shape), one
        REVISION_DAYS apart, the newest created 30 minutes ago; the current one is `apis/{api}` and carries the
        operations (ORDERS_OPERATIONS unless told; {} for none)."""
        count = revisions or current
        for number in range(1, count + 1):
            key = self.api_id(service, api, None if number == current else number)
            created = self._apim_time(30 + (count - number) * REVISION_DAYS * 1440)
            properties: Json = {
                "displayName": api.replace("-", " ").title(),
                "apiRevision": str(number),
                "apiRevisionDescription": f"revision {number} of {api}",
                "description": f"The {api} API",
                "path": api,
                "protocols": ["https"],
                "subscriptionKeyParameterNames": {"header": "Ocp-Apim-Subscription-Key", "query": "subscription-key"},
                "subscriptionRequired": True,
                "type": "http",
                "isCurrent": number == current,
                "isOnline": number not in offline,
            }
            if service_url is not None:
                properties["serviceUrl"] = service_url
            self.resources[key] = {
                "id": key,
                "name": key.rsplit("/", 1)[-1],
                "type": "Microsoft.ApiManagement/service/apis",
                "properties": properties,
                "_revision": {"createdDateTime": created, "updatedDateTime": created},
            }
        listed = ORDERS_OPERATIONS if operations is None else operations
        for operation, (method, template, display) in listed.items():
            self._operation(service, api, operation, method, template, display)

    def _operation(self, service: str, api: str, operation: str, method: str, template: str, display: str) -> None:
        key = f"{self.api_id(service, api)}/operations/{operation}"
        parameters = [
            {"name": name.strip("{}"), "type": "string", "required": True, "values": []}
            for name in template.split("/")
            if name.startswith("{")
        ]
        self.resources[key] = {
            "id": key,
            "name": operation,
            "type": "Microsoft.ApiManagement/service/apis/operations",
            "properties": {
                "displayName": display,
                "method": method,
                "urlTemplate": template,
                "templateParameters": parameters,
                "responses": [{"statusCode": 200, "description": "OK", "representations": [], "headers": []}],
            },
        }

    def api_release(
        self, service: str, api: str, release: str, *, revision: int | None, notes: str, age_minutes: int
    ) -> None:
        """ApiReleaseContract: `apiId` names the revision it made current (`;rev=N`); None leaves it out, as the
        spec's ListApiReleases example does."""
        key = f"{self.api_id(service, api)}/releases/{release}"
        properties: Json = {
            "createdDateTime": self._apim_time(age_minutes),
            "updatedDateTime": self._apim_time(age_minutes),
            "notes": notes,
        }
        if revision is not None:
            properties["apiId"] = self.api_id(service, api, revision)
        self.resources[key] = {
            "id": key,
            "name": release,
            "type": "Microsoft.ApiManagement/service/apis/releases",
            "properties": properties,
        }

    def _apim_time(self, minutes_ago: int) -> str:
        # API Management writes milliseconds and a Z: 2018-02-08T20:38:29.173Z
        moment = self.now - dt.timedelta(minutes=minutes_ago)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _template(self, image: str, revision: str, min_replicas: int) -> Json:
        return {
            "revisionSuffix": revision.rsplit("--", 1)[-1],
            "containers": [{"name": "api", "image": image, "resources": {"cpu": 0.5, "memory": "1Gi"}}],
            "scale": {"minReplicas": min_replicas, "maxReplicas": 5},
        }

    def _time(self, minutes_ago: int) -> str:
        return (self.now - dt.timedelta(minutes=minutes_ago)).replace(microsecond=0).isoformat()

    def _kudu_time(self, minutes_ago: int) -> str:
        # Kudu writes .NET round-trip times: seven fractional digits and a Z.
        moment = self.now - dt.timedelta(minutes=minutes_ago)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
