"""`roboact curate` builds its CurateConfig from --config, --set and the flags that were given; the LLM
endpoint, model and key from the environment are defaults under all three; a bad --set stops it first."""
from __future__ import annotations

import json

from roboact.cli import build_parser, main
from roboact.data.curate.cli import curate_config


def _config(*argv):
    return curate_config(build_parser().parse_args(["curate", *argv]))


def test_config_file_set_flags_and_environment(tmp_path, monkeypatch):
    for v in ("ROBOACT_LLM_API_KEY", "DEEPSEEK_API_KEY", "OPENAI_API_KEY", "ROBOACT_LLM_MODEL"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("ROBOACT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ROBOACT_LLM_API_KEY", "from-env")
    cfg = _config("rh20t", "/data/rh20t", "--out", "o")        # flags alone: the old defaults
    assert (cfg.annotator, cfg.min_rating, cfg.workers, cfg.llm.concurrency) == ("rules", 2, 2, 8)
    assert (cfg.llm.base_url, cfg.llm.model, cfg.llm.api_key) == ("http://127.0.0.1:9/v1", "deepseek-reasoner",
                                                                  "from-env")
    path = tmp_path / "curate.json"
    path.write_text(json.dumps({"source": "manifest", "input": "list.csv", "out_dir": "o", "workers": 3,
                                "llm": {"base_url": "https://example.org", "concurrency": 2}}))
    cfg = _config("--config", str(path), "--set", "llm.model=m1", "annotator=llm", "--llm-concurrency", "4")
    assert (cfg.source, cfg.input, cfg.out_dir, cfg.workers, cfg.annotator) == ("manifest", "list.csv", "o", 3, "llm")
    assert (cfg.llm.base_url, cfg.llm.model, cfg.llm.concurrency) == ("https://example.org", "m1", 4)
    assert cfg.llm.api_key == "from-env"                     # still the environment's: nothing else named one
    assert _config("rh20t", "x", "--config", str(path)).source == "rh20t"   # the positional wins


def test_bad_set_fails_before_reading_anything(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["curate", "manifest", str(tmp_path / "none.csv"), "--out", str(out), "--set", "llm.concurency=2"]) == 2
    err = capsys.readouterr().err
    assert "llm.concurency: unknown config field for LLMConfig" in err and "concurrency" in err
    assert main(["curate", "manifest", str(tmp_path / "none.csv"), "--out", str(out), "--set", "min_rating=high"]) == 2
    assert "min_rating: expected an integer, got 'high'" in capsys.readouterr().err
    assert not out.exists()
