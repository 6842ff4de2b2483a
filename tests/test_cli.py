"""The CLI: exit codes, stderr vs stdout, JSON equal to the library, lazy imports, help."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gaitcli.cli.main import app
from gaitcli.data.describe import describe
from gaitcli.io.readers import read_recording

from conftest import EXAMPLES

runner = CliRunner()


def test_help_is_fast_to_import_no_heavy_modules():
    code = ("import sys\nfrom gaitcli.cli.main import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'opensim', 'c3d', 'pandas', 'pyarrow', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ingest_and_inspect_do_not_import_torch():
    code = ("import sys\nfrom gaitcli.cli.main import app\n"
            f"try:\n    app(['inspect', r'{EXAMPLES / 'c3d/HC002D06.c3d'}', '--json'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_every_command_has_help_and_a_docs_page():
    docs = Path(__file__).resolve().parents[1] / "docs" / "commands"
    for command in app.registered_commands:
        assert command.name and (command.help or command.callback.__doc__), command.name
        assert (docs / f"{command.name}.md").is_file(), command.name


def test_inspect_json_equals_library(real):
    path = real / "opensim-core/example3DWalking_Rajagopal/coordinates.sto"
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(json.dumps(describe(read_recording(path))))


def test_inspect_table_and_bad_file(tmp_path, real):
    result = runner.invoke(app, ["inspect", str(real / "c3d-org-samples/sample10_TYPE-4a.c3d")])
    assert result.exit_code == 0 and "forceplates" in result.stdout
    bad = tmp_path / "bad.mot"
    bad.write_text("garbage\n")
    result = runner.invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "bad.mot" in lines[0]


def test_ingest_json_equals_library_and_exit_codes(tmp_path):
    data = tmp_path / "in"
    shutil.copytree(EXAMPLES, data)
    result = runner.invoke(app, ["ingest", str(data), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.stderr
    from gaitcli.data.ingest import ingest

    again = ingest([data], tmp_path / "out2").to_dict()
    printed = json.loads(result.stdout)
    assert printed["cycles"] == again["cycles"] and printed["trials"] == again["trials"]
    (data / "truncated.c3d").write_bytes((EXAMPLES / "c3d/HC002D06.c3d").read_bytes()[:5000])
    result = runner.invoke(app, ["ingest", str(data), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [Path(f["path"]).name for f in report["failures"]] == ["truncated.c3d"]
    assert report["unchanged"] == 3, "the good trials were kept, not redone"


def test_ingest_usage_errors_exit_2(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "no such file" in result.stderr
    result = runner.invoke(app, ["ingest", str(EXAMPLES), "-o", str(tmp_path / "o"), "--lowpass", "knee=6"])
    assert result.exit_code == 2 and "--lowpass" in result.stderr
    result = runner.invoke(app, ["ingest", str(EXAMPLES)])
    assert result.exit_code == 2


def test_ingest_summary_and_plain_progress_when_piped(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gaitcli.cli.main", "ingest", str(EXAMPLES / "wbds"),
                             "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[1/1] WBDS01walkOC" in result.stderr
    assert "cycles R\t1" in result.stdout.splitlines() or "cycles R\t1" in result.stdout


def test_json_stdout_stays_pure_when_opensim_loads_a_model(tmp_path):
    """OpenSim's C++ logger writes to the real stdout and to ./opensim.log unless silenced."""
    result = subprocess.run([sys.executable, "-m", "gaitcli.cli.main", "ingest", str(EXAMPLES / "opensim"),
                             "-o", str(tmp_path / "out"), "--json", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["trial_details"][0]["mass_source"] == "model subject01.osim"
    assert not (tmp_path / "opensim.log").exists()


def test_pretrain_and_finetune_commands(tiny_models, tmp_path):
    pre = tmp_path / "p.safetensors"
    result = runner.invoke(app, ["pretrain", str(tiny_models["data"]), "-o", str(pre), "--epochs", "1",
                                 "--window", "32", "--set", "d_model=16", "--set", "n_heads=2", "--set", "n_layers=1",
                                 "--set", "d_ff=16", "--json", "--quiet"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs_run"] == 1 and summary["test_subjects"]
    assert pre.with_suffix(".log.csv").read_text().startswith("epoch,step,lr,train_loss")
    tuned = tmp_path / "t.safetensors"
    result = runner.invoke(app, ["finetune", str(pre), str(tiny_models["data"]), "-o", str(tuned), "--epochs", "1",
                                 "--freeze-blocks", "1", "--label-fraction", "0.5", "--json", "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)["test_metrics"]) == {
        f"{j}_{s}_moment" for j in ("hip_flexion", "knee_angle", "ankle_angle") for s in "rl"}
    result = runner.invoke(app, ["finetune", str(pre), str(tiny_models["data"]), "-o", str(tuned),
                                 "--freeze-blocks", "9"])
    assert result.exit_code == 1 and "only 1 blocks" in result.stderr


def test_predict_command_outputs(tiny_models, real, tmp_path):
    mot = real / "opensim-core/ID_test_subject01/subject01_walk1_ik.mot"
    model = str(tiny_models["finetuned"])
    result = runner.invoke(app, ["predict", str(mot), "--model", model, "--joint", "knee", "-o", str(tmp_path / "k.sto")])
    assert result.exit_code == 0, result.stderr
    assert "knee_angle_r_moment" in (tmp_path / "k.sto").read_text().split("endheader")[1].splitlines()[1]
    result = runner.invoke(app, ["predict", str(mot), "--model", model, "--joint", "ankle", "--side", "r", "-o", "-"])
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "time,ankle_angle_r_moment,ankle_angle_r_moment_Nm,ankle_angle_r_moment_spread"
    assert len(lines) > 150
    moments_only = real / "opensim-models/Gait2354_Simbody/OutputReference/ResultsInverseDynamics/inverse_dynamics.sto"
    result = runner.invoke(app, ["predict", str(mot), str(moments_only), "--model", model, "-o", str(tmp_path / "many")])
    assert result.exit_code == 1
    assert "missing input channels" in result.stderr and (tmp_path / "many/subject01_walk1_ik.moments.sto").exists()


def test_corrupted_or_foreign_checkpoint_is_one_line(tmp_path, tiny_models, real):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(tiny_models["finetuned"].read_bytes()[:2000])
    result = runner.invoke(app, ["predict", str(real / "opensim-core/ID_test_subject01/subject01_walk1_ik.mot"),
                                 "--model", str(bad)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "bad.safetensors" in lines[0]
    result = runner.invoke(app, ["predict", "x.mot", "--model", str(tiny_models["pretrained"])])
    assert result.exit_code == 2 and "fine-tune it first" in result.stderr


def test_evaluate_command_json_equals_library(tiny_models):
    from gaitcli.eval.evaluate import evaluate

    result = runner.invoke(app, ["evaluate", str(tiny_models["finetuned"]), str(tiny_models["data"]),
                                 "--split", "test", "--json"])
    assert result.exit_code == 0, result.stderr
    library = evaluate(tiny_models["finetuned"], [tiny_models["data"]], "test").to_dict()
    assert json.loads(result.stdout)["summary"] == json.loads(json.dumps(library["summary"]))
