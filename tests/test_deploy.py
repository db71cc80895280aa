"""The Kubernetes and KServe manifests in deploy/: valid against the Kubernetes schemas, and their
arguments are flags `zoo serve` knows."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from zoo import cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBERNETES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", KUBERNETES, ids=[p.name for p in KUBERNETES])
def test_kubernetes_manifests_validate_against_the_schemas(path):
    for document in documents(path):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def serve_args(container: dict):
    return cli.build_parser(["serve"]).parse_args(["serve", *container["args"]])


def test_deployment_probes_ports_and_args_fit_the_server():
    (deployment,) = documents(DEPLOY / "kubernetes" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = serve_args(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": args.port, "http": args.rest_port, "metrics": args.metrics_port}
    assert container["readinessProbe"]["grpc"]["port"] == args.port
    assert args.metrics_host == "0.0.0.0", "a scraper outside the pod must reach the metrics"
    (service,) = documents(DEPLOY / "kubernetes" / "service.yaml")
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)


def test_kserve_inference_service_wraps_a_valid_container():
    (service,) = documents(DEPLOY / "kserve" / "inferenceservice.yaml")
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    containers = service["spec"]["predictor"]["containers"]
    # KServe's predictor is a pod spec: its containers validate as a Pod's.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"},
           "spec": {"containers": containers}}  # fmt: skip
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    args = serve_args(containers[0])
    assert [p["containerPort"] for p in containers[0]["ports"]] == [args.port]
    assert containers[0]["ports"][0]["name"] == "h2c", "KServe routes gRPC on an h2c port"


def test_a_broken_manifest_is_caught():
    (deployment,) = documents(DEPLOY / "kubernetes" / "deployment.yaml")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
