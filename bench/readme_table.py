"""Renders the benchmark tables from ``bench/results/*.json``: the full tables into
``bench/results/README.md`` (between ``<!-- bench:start -->`` and ``<!-- bench:end -->``) and one
short table of targets per CPU kind into the top-level README (between ``<!-- headline:start -->``
and ``<!-- headline:end -->``), so both always match the committed results; also the README's
table of trained checkpoints, from their cards (``bench.models_table``). One part per CPU kind
the benchmarks ran on (``NAME-KIND.json``; the files without a kind in their name were measured on
an Intel Xeon with AMX, before results had kinds).

    python -m bench.readme_table
"""

import json
import statistics
from pathlib import Path

from bench.models_table import MODELS_END, MODELS_START, render_models_table, write_catalogue
from bench.report import RESULTS, as_runs, time_to

README = Path(__file__).resolve().parents[1] / "README.md"
RESULTS_README = RESULTS / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
HEADLINE_START, HEADLINE_END = "<!-- headline:start -->", "<!-- headline:end -->"
CIFAR_LABEL = "CIFAR-10 (JPEG q75 copy)"


def _seconds(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _percent(run: dict) -> str:
    """A run's steady CPU use (100 % = one core), or a dash for results from before it was kept."""
    return f"{run['cpu_percent']:.0f} %" if "cpu_percent" in run else "–"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _quick_recipe(mnist: dict) -> str:
    """Which recipe the 99.2 % target's ratio is of, where a quick one ran beside the main one."""
    if "zoo_quick" not in mnist:
        return ""
    main = mnist["targets"]["main_config_wall_time_to_99.2_ratio"]
    return f"`mnist_fastnet_quick`; `mnist_fastnet`: {main:.2f}; "


def _fashion_within(zoo: dict, within: float | None, wall: bool) -> str:
    """The zoo's best Fashion-MNIST accuracy within the reference's time and when it got there;
    where that was not its last epoch, also where the run ended."""
    if within is None:
        return "no epoch ended within it"
    clock, total = ("wall_seconds", "wall_seconds") if wall else ("seconds", "train_seconds")
    reached = time_to(zoo["points"], within, clock)
    cell = f"{within * 100:.2f} % (after {reached:.0f} s"
    if reached < zoo["points"][-1][clock]:
        epochs = len(zoo["points"])
        cell += f"; its {epochs} epochs end at {zoo['final_accuracy'] * 100:.2f} % after "
        cell += f"{zoo[total]:.0f} s"
    return cell + ")"


def _fashion_cell(fashion: dict, wall: bool) -> str:
    """The Fashion-MNIST target's measured cell: one run's, or the median over seeds and each
    seed's."""
    zoo, targets = as_runs(fashion["zoo"]), fashion["targets"]
    within = targets["zoo_accuracy_within_reference_wall"]
    if len(zoo) == 1:
        return _fashion_within(zoo[0], within, wall)
    per_seed = targets["zoo_accuracy_within_reference_wall_per_seed"]
    seeds = "; ".join(
        f"seed {run['seed']}: {_fashion_within(run, accuracy, wall)}"
        for run, accuracy in zip(zoo, per_seed, strict=True)
    )
    median = "–" if within is None else f"{within * 100:.2f} %"
    return f"{median}, median of {len(zoo)} seeds; {seeds}"


def _reference_runs(references: list[dict]) -> str:
    """How the reference's time was taken, where it ran more than once."""
    if len(references) == 1:
        return ""
    return f"median of its {len(references)} runs, before and after the zoo's: "


def training_section(train: dict, pipeline: dict | None) -> list[str]:
    """Training runs and targets. Results with wall times (``clock`` set) are shown and judged
    from process start, evaluation included; earlier ones on training seconds alone."""
    mnist, fashion = train["mnist"], train["fashion_mnist"]
    wall = "clock" in train
    prefix, total = ("wall_", "wall_seconds") if wall else ("", "train_seconds")
    clock = (
        "seconds from process start to the final test accuracy, evaluation included"
        if wall
        else "seconds of training, evaluation excluded"
    )
    lines = [
        f"**Training** (`bench/results/train*.json`, `train*.png`; {clock}):",
        "",
        "| MNIST run | to 99.0 % | to 99.2 % | to 99.4 % | final | seconds | examples/s | CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    references = as_runs(mnist["reference"])
    runs = [
        (f"keras-io reference, 15 epochs{f', run {n}' if len(references) > 1 else ''}", run)
        for n, run in enumerate(references, 1)
    ]
    runs += [(f"zoo `mnist_fastnet`, seed {z['seed']}", z) for z in mnist["zoo"]]
    runs += [
        (f"zoo `mnist_fastnet_quick`, seed {z['seed']}", z) for z in mnist.get("zoo_quick", [])
    ]
    for name, run in runs:
        name += f" ({run['cpu_kernels']})" if "cpu_kernels" in run else ""
        cells = [_seconds(run[f"{prefix}seconds_to_{t}"]) for t in ("0.990", "0.992", "0.994")]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {run['final_accuracy'] * 100:.2f} % "
            f"| {run[total]:.1f} | {run['examples_per_second']:,.0f} | {_percent(run)} |"
        )
    targets = mnist["targets"]
    cnn = mnist["keras_io_architecture_through_zoo_pipeline"]
    cnn_count = len(cnn.get("runs_examples_per_second", []))
    cnn_runs = f", median of {cnn_count} runs" if cnn_count > 1 else ""
    f_refs = as_runs(fashion["reference"])
    within = fashion["targets"]["zoo_accuracy_within_reference_wall"]
    f_finals = " / ".join(f"{r['final_accuracy'] * 100:.2f}" for r in f_refs)
    ratio_992 = targets[f"{prefix}time_to_99.2_ratio"]
    time_ratio = targets["median_wall_seconds_ratio" if wall else "median_train_seconds_ratio"]
    lines += [
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| MNIST 99.2 % in ≤ 1/4 of the reference's time to 99.2 % | {ratio_992:.2f} of it "
        f"({_quick_recipe(mnist)}median of {len(mnist['zoo'])} seeds) | "
        f"{_met(ratio_992 <= 0.25)} |",
        f"| MNIST ≥ 99.5 %, median of {len(mnist['zoo'])} seeds | "
        f"{targets['median_final_accuracy'] * 100:.2f} % | "
        f"{_met(targets['median_final_accuracy'] >= 0.995)} |",
        f"| … within 1/3 of the reference's 15-epoch time ({_reference_runs(references)}"
        f"{statistics.median(r[total] for r in references):.0f} s) | {time_ratio:.2f} of it | "
        f"{_met(time_ratio <= 1 / 3)} |",
        f"| keras-io architecture through the zoo's pipeline ≥ 1.5× the reference's examples/s | "
        f"{cnn['ratio_to_reference']:.2f}× ({cnn['examples_per_second']:,.0f} examples/s"
        f"{cnn_runs}) | "
        f"{_met(cnn['ratio_to_reference'] >= 1.5)} |",
        f"| Fashion-MNIST ≥ 93.5 % within the reference's 15-epoch time "
        f"({_reference_runs(f_refs)}{statistics.median(r[total] for r in f_refs):.0f} s; "
        f"the reference ends at {f_finals} %) | {_fashion_cell(fashion, wall)} | "
        f"{_met(within is not None and within >= 0.935)} |",
    ]
    if "median_cpu_percent" in targets:
        cpu, cpu_target = targets["median_cpu_percent"], targets["cpu_percent_target"]
        lines.append(
            f"| the zoo's training keeps the cores busy: ≥ {cpu_target:.0f} % CPU over an epoch "
            f"(the reference: {' / '.join(_percent(r) for r in references)}) | "
            f"{cpu:.0f} % (median) | {_met(cpu >= cpu_target)} |"
        )
    if pipeline is not None:
        lines.append(
            f"| input pipeline alone ≥ 10× the reference's training examples/s | "
            f"{pipeline['ratio']:.1f}× ({pipeline['pipeline_examples_per_second']:,.0f} "
            f"examples/s) | {_met(pipeline['met'])} |"
        )
    if wall:
        lines += [
            "",
            f"On training seconds alone (evaluation, imports and set-up excluded) the same ratios "
            f"are {targets['time_to_99.2_ratio']:.2f} (time to 99.2 %) and "
            f"{targets['median_train_seconds_ratio']:.2f} (15-epoch time).",
        ]
    return lines


def serving_section(serve: dict) -> list[str]:
    lines = [
        "**Serving** (`bench/results/serve*.json`, `serve*.png`; single-image MNIST `Predict` requests "
        "from an asyncio gRPC client on loopback, sharing the 2 cores with the server):",
        "",
        "| server | c=1 QPS | c=8 QPS | c=32 QPS | c=32 p50 / p99 ms | c=64 QPS |",
        "|---|---|---|---|---|---|",
    ]
    for name, levels in serve["servers"].items():
        lines.append(
            f"| {name} | {levels['1']['qps']:,.0f} | {levels['8']['qps']:,.0f} | "
            f"{levels['32']['qps']:,.0f} | {levels['32']['p50_ms']:.1f} / {levels['32']['p99_ms']:.1f} "
            f"| {levels['64']['qps']:,.0f} |"
        )
    bare = serve["bare_model"]
    lines.append(
        "| bare model in-process, images/s at batch 1 / 8 / 32 / 64 | "
        f"{bare['1']['images_per_second']:,.0f} | {bare['8']['images_per_second']:,.0f} | "
        f"{bare['32']['images_per_second']:,.0f} | – | {bare['64']['images_per_second']:,.0f} |"
    )
    targets = serve["targets"]
    fraction = targets["fraction_of_bare_batched_throughput_at_32"]
    lines += [
        "",
        "| target at concurrency 32 | measured | met |",
        "|---|---|---|",
        f"| ≥ 20× the naive server's QPS | {targets['qps_ratio_to_naive_at_32']:.1f}× | "
        f"{_met(targets['qps_ratio_to_naive_at_32'] >= 20)} |",
        f"| p99 ≤ 30 ms | {targets['p99_ms_at_32']:.1f} ms | {_met(targets['p99_ms_at_32'] <= 30)} |",
        f"| fraction of the bare model's batched throughput (aim ≥ 25 %) | {fraction * 100:.0f} % | "
        f"{_met(fraction >= 0.25)} |",
        "",
        f"Per-request overhead over the bare model call at concurrency 1: "
        f"{targets['per_request_overhead_ms_at_1']:.2f} ms. A no-op server that answers a fixed "
        f"response reaches {targets['grpc_ceiling_fraction_of_bare_at_32'] * 100:.0f} % of the bare "
        f"model's batched throughput with the same client on the same cores, and `zoo serve` "
        f"{targets['fraction_of_grpc_ceiling_at_32'] * 100:.0f} % of that ceiling: per-request Python "
        "gRPC work on both sides, not the model, bounds the fraction here.",
    ]
    return lines


def peer_section(serve: dict) -> list[str]:
    """The zoo against the peer, side by side in the Open Inference Protocol."""
    if not serve.get("peers"):
        return [f"No peer in this run ({serve.get('peer_note') or 'measured before it existed'})."]
    rounds = serve["limits"]["rounds"]
    lines = [
        f"**Against a peer**: {serve['peer_version']} through PyTriton, serving the same "
        "SavedModel with its dynamic batcher (`bench/triton_peer.py`), the same client speaking "
        f"the Open Inference Protocol (`ModelInfer`). Each pair ran at once, taking turns at "
        f"every level in rotating order; medians of {rounds} rounds. CPU: the server's seconds "
        "per 1,000 requests at c=64.",
        "",
        "| server | c=1 QPS | c=8 QPS | c=32 QPS (p99 ms) | c=64 QPS (p99 ms) | p99 64 / 32 | CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for comparison in serve["peers"].values():
        for name, levels in comparison["servers"].items():
            lines.append(
                f"| {name} | {levels['1']['qps']:,.0f} | {levels['8']['qps']:,.0f} | "
                f"{levels['32']['qps']:,.0f} ({levels['32']['p99_ms']:.0f}) | "
                f"{levels['64']['qps']:,.0f} ({levels['64']['p99_ms']:.0f}) | "
                f"{levels['64']['p99_ms'] / levels['32']['p99_ms']:.2f} | "
                f"{levels['64']['server_cpu_s_per_1000']:.2f} s |"
            )
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for comparison in serve["peers"].values():
        targets = comparison["targets"]
        ratios = " / ".join(f"{r:.2f}" for r in targets["qps_ratio_to_peer"].values())
        lines += [
            f"| {comparison['zoo']}: QPS ≥ {comparison['peer']}'s at c=1 / 8 / 32 / 64 | "
            f"{ratios}× | {_met(targets['qps_at_or_above_peer_everywhere'])} |",
            f"| {comparison['zoo']}: p99 at c=64 ≤ 1.5× p99 at c=32, no errors | "
            f"{targets['p99_64_over_32']:.2f}× ({comparison['peer']}: "
            f"{targets['peer_p99_64_over_32']:.2f}×), {targets['errors']} errors | "
            f"{_met(targets['p99_64_over_32'] <= 1.5 and targets['errors'] == 0)} |",
        ]
    if serve.get("loop"):
        loop = serve["loop"]
        qps = " / ".join(f"{r:.2f}" for r in loop["qps_ratio"].values())
        cpu = " / ".join(f"{r:.2f}" for r in loop["cpu_per_request_ratio"].values())
        lines += [
            "",
            f"**Event loop** (`loop`): the zoo on uvloop (the default) against the same server on "
            f"asyncio's own loop, side by side in the same way: QPS {qps}× and server CPU per "
            f"request {cpu}× at c=1 / 8 / 32 / 64.",
        ]
    return lines


def _open_loop_cell(level: dict) -> str:
    """p50 / p99 of the rounds perf_analyzer finished, and how many it stopped in (at the first
    refused request, naming its status)."""
    cell = f"{level['p50_ms']:.1f} / {level['p99_ms']:.1f}" if "qps" in level else "–"
    if level["errors"]:
        cell += f" ({len(level['errors'])} of {len(level['rounds'])} rounds stopped: "
        cell += f"{level['errors'][0].rsplit(': ', 1)[-1]})"
    return cell


def serve_peer_section(name: str, result: dict) -> list[str]:
    """The zoo against Triton, both driven by perf_analyzer (``bench.serve_peer``), from the
    results file ``name``."""
    zoo, peer = result["versions"]
    versions = " and ".join(f"{name}: {version}" for name, version in result["versions"].items())
    rounds = "one round" if result["rounds"] == 1 else f"medians of {result['rounds']} rounds"
    lines = [
        f"**Against Triton, with perf_analyzer** (`{name}`; {versions}, the same SavedModel; "
        "single-image MNIST `ModelInfer` over gRPC from perf_analyzer `--async`, sharing the 2 "
        f"cores; both servers running, taking turns in rotating order, {rounds}). Closed loop, "
        "QPS (p99 ms):",
        "",
        "| server | c=1 | c=8 | c=32 | c=64 |",
        "|---|---|---|---|---|",
    ]
    for name, levels in result["closed_loop"].items():
        cells = " | ".join(
            f"{level['qps']:,.0f} ({level['p99_ms']:.1f})" if "qps" in level else "failed"
            for level in levels.values()
        )
        lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "Open loop at a share of each server's own peak (requests evenly spaced; 120 %: the "
        "benchmark's asyncio client, which counts refusals, against its own 80 % run), "
        "p50 / p99 ms:",
        "",
        "| server | peak QPS | 50 % | 80 % | 95 % | 80 % (asyncio) | 120 %: answered QPS, "
        "p50 / p99 / max ms | 120 %: refused |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, shares in result["open_loop"].items():
        cells = " | ".join(_open_loop_cell(level) for level in shares.values())
        base, over = result["overload"][name]["0.8"], result["overload"][name]["1.2"]
        refused = sum(n for code, n in over["codes"].items() if code != "OK")
        kinds = ", ".join(code for code in over["codes"] if code != "OK") or "–"
        lines.append(
            f"| {name} | {result['peaks'][name]:,.0f} | {cells} | {base['p50_ms']:.1f} / "
            f"{base['p99_ms']:.1f} | {over['qps']:,.0f}, {over['p50_ms']:.1f} / "
            f"{over['p99_ms']:.1f} / {over['max_ms']:.0f} | "
            f"{refused / sum(over['codes'].values()):.0%} ({kinds}) |"
        )
    targets = result["targets"]
    ratios = " / ".join(f"{r:.2f}" for r in targets["qps_ratio_to_peer"].values())
    over_ok = (
        targets["overload_shed_share"] > 0
        and targets["overload_unavailable_only"]
        and targets["overload_p99_over_80"] <= targets["overload_p99_over_80_target"]
        and targets["overload_max_ms"] <= targets["overload_max_ms_target"]
    )
    lines += [
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| {zoo}: QPS ≥ {peer}'s at c=1 / 8 / 32 / 64 | {ratios}× | "
        f"{_met(targets['qps_at_or_above_peer_everywhere'])} |",
        f"| {zoo}: open loop at 80 % of its peak, p99 ≤ 3× p50 | "
        f"{targets['p99_over_p50_at_80']:.2f}× | {_met(targets['p99_over_p50_at_80'] <= 3)} |",
        f"| {zoo}: at 120 %, excess refused UNAVAILABLE, answered p99 ≤ 2× its 80 % p99, none "
        f"over max_queue_seconds | {targets['overload_shed_share']:.0%} refused "
        f"({', '.join(code for code in targets['overload_codes'] if code != 'OK')}), "
        f"p99 {targets['overload_p99_over_80']:.2f}×, "
        f"max {targets['overload_max_ms']:.0f} ms | {_met(over_ok)} |",
    ]
    return lines


LEGACY_KIND = "intel-amx"


def results_by_kind() -> dict[str, dict[str, dict]]:
    """``{kind: {benchmark name: result}}`` of every results file but the smoke runs' (``--quick``:
    2 epochs, kept out of git), which measure nothing the README should show."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        name, _, kind = path.stem.partition("-")
        if name.endswith("_quick"):
            continue
        found.setdefault(kind or LEGACY_KIND, {})[name] = json.loads(path.read_text())
    return found


def serve_start_line(result: dict) -> str:
    this, before = result["this"], result["against"]
    return (
        f"**Server start** (`serve_start`): {this['median_seconds_to_serving']:.2f} s from process "
        f"start to SERVING and {this['median_rss_mb']:.0f} MB resident, against "
        f"{before['median_seconds_to_serving']:.2f} s and {before['median_rss_mb']:.0f} MB for the "
        "server that still loaded Keras and the training code (median of alternating runs)."
    )


def reload_line(result: dict) -> str:
    """Latency around a hot reload under load (``bench.reload``), and the other checkout's."""
    this = result["this"]
    line = (
        f"**Hot reload under load** (`reload`, concurrency {result['concurrency']}): p99 "
        f"{this['around_switch']['p99_ms']:.0f} ms and slowest {this['around_switch']['max_ms']:.0f}"
        f" ms in the second around the switch to a new version, {this['steady']['p99_ms']:.0f} ms "
        f"p99 away from it, {this['errors']} failed requests (medians of {len(this['reloads'])} "
        "reloads)"
    )
    if "against" not in result:
        return line + "."
    before = result["against"]
    return (
        f"{line}; the server before the change, taking turns with it: p99 "
        f"{before['around_switch']['p99_ms']:.0f} ms, slowest {before['around_switch']['max_ms']:.0f}"
        f" ms around the switch ({before['steady']['p99_ms']:.0f} ms away from it)."
    )


def tracing_line(result: dict) -> str:
    """What ``--tracing`` costs (``bench.tracing``): QPS against tracing off, per concurrency."""
    ratios = result["ratios"]

    def qps(name: str) -> str:
        return " / ".join(f"{ratios[name][c]['qps']:.2f}" for c in ratios[name])

    levels = "/".join(next(iter(ratios.values())))
    line = (
        f"**Tracing** (`tracing`, QPS as a share of tracing off at c={levels}): every request "
        f"traced and exported over OTLP {qps('tracing on')}; one trace in a hundred "
        f"{qps('tracing 1 %')}"
    )
    if "before" not in ratios:
        return line + "."
    return f"{line}; the server before tracing existed {qps('before')}."


def _dates(results: dict) -> str:
    """The day of the results, or each benchmark's day where they were run on different ones."""
    by_date: dict[str, list[str]] = {}
    for name, result in sorted(results.items()):
        by_date.setdefault(result["machine"]["date"][:10], []).append(f"`{name}`")
    if len(by_date) == 1:
        return next(iter(by_date))
    return ", ".join(f"{date} ({', '.join(names)})" for date, names in sorted(by_date.items()))


def accelerator_section(result: dict) -> list[str]:
    """The GPU recipe's runs (``bench.accelerator``): each precision's steady speed, its first
    epoch (the step's compilation included), and training and wall seconds."""
    machine = result["machine"]
    first_runs = result["runs"][0]
    lines = [
        f"### {machine['kind']}: {machine['accelerator']}, host {machine['cpu']}, "
        f"{machine['cores']} cores",
        "",
        f"Measured {machine['date'][:10]} by `python -m bench.accelerator` (`{result['config']}`, "
        f"{len(first_runs['points'])} epochs of {first_runs['examples']:,} images), Keras "
        f"{machine['keras']} on JAX {machine['jax']}; data: {result['data']}; {result['clock']}.",
        "",
        "| precision | seed | first epoch | later epochs (median) | examples/s | training | wall "
        "| final accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        epochs = [point["epoch_seconds"] for point in run["points"]]
        later = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
        lines.append(
            f"| {run['precision']} | {run['seed']} | {epochs[0]:.1f} s | {later:.2f} s "
            f"| {run['steady_examples_per_second']:,.0f} | {run['train_seconds']:.1f} s "
            f"| {run['wall_seconds']:.1f} s | {run['final_accuracy']:.2%} |"
        )
    return lines


def render() -> str:
    lines = []
    for kind, results in sorted(results_by_kind().items(), key=lambda item: item[0] != LEGACY_KIND):
        if "train_accelerator" in results:
            lines += [*accelerator_section(results.pop("train_accelerator")), ""]
        if not results:
            continue
        machine = next(iter(results.values()))["machine"]
        lines += [
            f"### {kind}: {machine['cpu']}, {machine['cores']} cores",
            "",
            f"Measured {_dates(results)}, TensorFlow {machine['tensorflow']}, no GPU; each "
            "target a ratio against the reference measured in the same run.",
            "",
        ]
        if "train" in results and "fashion_mnist" in results["train"]:
            lines += [*training_section(results["train"], results.get("pipeline")), ""]
        if "serve" in results:
            lines += [*serving_section(results["serve"]), ""]
            lines += [*peer_section(results["serve"]), ""]
        for name in sorted(key for key in results if key.startswith("serve_peer")):
            lines += [*serve_peer_section(name, results[name]), ""]
        if "cifar" in results and "quick" in results["cifar"]:
            lines += [*cifar_section(results["cifar"]), ""]
        if "serve_start" in results:
            lines += [serve_start_line(results["serve_start"]), ""]
        if "reload" in results:
            lines += [reload_line(results["reload"]), ""]
        if "tracing" in results:
            lines += [tracing_line(results["tracing"]), ""]
    return "\n".join(lines).rstrip()


def cifar_section(cifar: dict) -> list[str]:
    """The CIFAR-10 recipes and the Keras ResNet-20 example, with the quick recipe's targets."""
    reference = cifar["reference"]
    lines = [
        f"**{CIFAR_LABEL}** (`bench/results/cifar*.json`; seconds from process start to the final "
        "test accuracy; the zoo's per-epoch points are on its 2,500-image validation split):",
        "",
        "| run | test accuracy | seconds | test ECE before → after temperature |",
        "|---|---|---|---|",
        f"| Keras ResNet-20 v1 example, stopped at {reference['seconds'] / 60:.0f} min | "
        f"{reference['points'][-1]['test_accuracy']:.2%} | {reference['wall_seconds']:.0f} | – |",
    ]
    runs = cifar["quick"]["runs"] + ([cifar["full"]["run"]] if "full" in cifar else [])
    lines += [
        f"| zoo `{run['config']}`, seed {run['seed']} | {run['test_accuracy']:.2%} | "
        f"{run['wall_seconds']:.0f} | {run['test_ece_before']:.2%} → {run['test_ece_after']:.2%} |"
        for run in runs
    ]
    return [*lines, "", *_target_table(cifar_targets(cifar))]


def cifar_targets(cifar: dict) -> list[tuple[str, str, bool]]:
    """``(target, measured, met)`` of the CIFAR-10 results."""
    targets, seeds = cifar["quick"]["targets"], len(cifar["quick"]["runs"])
    rows = [
        (f"{CIFAR_LABEL}: quick recipe ≥ 90.0 % in ≤ 15 min (median of {seeds})",
         f"{targets['median_test_accuracy']:.2%} in {targets['median_wall_seconds']:.0f} s",
         targets["accuracy_met"]),
        (f"… the Keras ResNet-20 example's accuracy at 15 min "
         f"({targets['reference_accuracy_at_budget']:.2%}) in ≤ 1/4 of its time",
         f"{targets['share_of_reference_time']:.2f} of it", targets["reference_met"]),
        ("… test ECE after temperature scaling ≤ 1.5 %",
         f"{targets['median_test_ece_before']:.2%} → {targets['median_test_ece_after']:.2%}",
         targets["ece_met"]),
    ]  # fmt: skip
    if "full" in cifar:
        run = cifar["full"]["run"]
        rows.append((f"{CIFAR_LABEL}: full recipe ≥ 93.0 % in ≤ 60 min",
                     f"{run['test_accuracy']:.2%} in {run['wall_seconds']:.0f} s",
                     cifar["full"]["met"]))  # fmt: skip
    return rows


def _target_table(rows: list[tuple[str, str, bool]]) -> list[str]:
    return ["| target | measured | met |", "|---|---|---|",
            *(f"| {target} | {measured} | {_met(met)} |" for target, measured, met in rows)]  # fmt: skip


def headline_rows(results: dict[str, dict]) -> list[tuple[str, str, bool]]:
    """One CPU kind's main targets: MNIST, Fashion-MNIST, CIFAR-10 and serving against Triton."""
    rows = []
    train = results.get("train")
    if train and "clock" in train:
        targets, seeds = train["mnist"]["targets"], len(train["mnist"]["zoo"])
        accuracy, ratio = targets["median_final_accuracy"], targets["median_wall_seconds_ratio"]
        within = train["fashion_mnist"]["targets"]["zoo_accuracy_within_reference_wall"]
        rows += [
            (f"MNIST ≥ 99.5 % (median of {seeds}) in ≤ 1/3 of the keras-io reference's time",
             f"{accuracy:.2%} in {ratio:.2f} of it", accuracy >= 0.995 and ratio <= 1 / 3),
            ("Fashion-MNIST ≥ 93.5 % within the reference's time",
             "–" if within is None else f"{within:.2%}", within is not None and within >= 0.935),
        ]  # fmt: skip
    if "cifar" in results and "quick" in results["cifar"]:
        rows += cifar_targets(results["cifar"])
    if "serve_peer" in results:
        peer, targets = list(results["serve_peer"]["versions"])[1], results["serve_peer"]["targets"]
        ratios = targets["qps_ratio_to_peer"].values()
        rows += [
            (f"serving: QPS ≥ {peer} at c=1 to 64 (perf_analyzer)",
             f"{min(ratios):.2f}× to {max(ratios):.2f}×",
             targets["qps_at_or_above_peer_everywhere"]),
            ("serving: open loop at 80 % of peak, p99 ≤ 3× p50",
             f"{targets['p99_over_p50_at_80']:.2f}×", targets["p99_over_p50_at_80"] <= 3),
        ]  # fmt: skip
    else:
        for comparison in (results.get("serve") or {}).get("peers", {}).values():
            ratios = comparison["targets"]["qps_ratio_to_peer"].values()
            rows.append((f"serving: QPS ≥ {comparison['peer']} at c=1 to 64",
                         f"{min(ratios):.2f}× to {max(ratios):.2f}×",
                         comparison["targets"]["qps_at_or_above_peer_everywhere"]))  # fmt: skip
    return rows


def _machine_label(results: dict[str, dict]) -> str:
    machine = next(iter(results.values()))["machine"]
    return f"{machine['cpu']}, {machine['cores']} cores"


def render_headline() -> str:
    """A short table of targets per CPU kind, for the top-level README."""
    lines = []
    for kind, results in sorted(results_by_kind().items()):
        rows = headline_rows(results)
        if rows:
            lines += [
                f"**{kind}** ({_machine_label(results)}):",
                "",
            ]
            lines += [*_target_table(rows), ""]
    return "\n".join(lines).rstrip()


def _replace_between(path: Path, start_marker: str, end_marker: str, text: str) -> None:
    content = path.read_text()
    start, end = content.index(start_marker) + len(start_marker), content.index(end_marker)
    path.write_text(content[:start] + "\n" + text + "\n" + content[end:])
    print(f"updated {path}")


def main() -> None:
    _replace_between(RESULTS_README, START, END, render())
    _replace_between(README, HEADLINE_START, HEADLINE_END, render_headline())
    _replace_between(README, MODELS_START, MODELS_END, render_models_table())
    write_catalogue()


if __name__ == "__main__":
    main()
