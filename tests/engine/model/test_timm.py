"""timm models (``timm:NAME``): listed, built offline, pretrained weights from a Hugging Face cache the test
writes, timm's preprocessing kept, Thaw's head in place of timm's classifier, blocks from timm's parameter
groups, and a run trained, checked, resumed and evaluated as any other. timm's own tiny test models of each
family (resnet, convnext, vit, efficientnet; 0.3-0.5M parameters at 160 px) keep it fast."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import cli
from engine import project as proj
from engine.advice.depth import measure
from engine.errors import ProjectError, WeightsError
from engine.model import timm_zoo, zoo
from engine.model.assemble import assemble
from engine.model.checklist import Checklist
from engine.preflight import preflight
from engine.results import evaluation
from engine.results.predict import explain, load_run
from engine.runs import folder

RESNET, CONVNEXT, VIT, EFFICIENTNET = ("timm:test_resnet.r160_in1k", "timm:test_convnext.r160_in1k",
                                       "timm:test_vit.r160_in1k", "timm:test_efficientnet.r160_in1k")
ROOT = Path(__file__).resolve().parents[3]


def cache_weights(name: str, seed: int = 0, file_name: str = "model.safetensors", state: dict | None = None) -> dict:
    """The name's pretrained file (random weights of its model, or `state`) in the Hugging Face cache
    (HF_HOME/hub), laid out as huggingface_hub does."""
    cfg = timm_zoo._cfg(name)
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in (state or zoo.build_model(name).state_dict()).items()}
    repo = timm_zoo.hf_cache_dir() / ("models--" + cfg["hf_hub_id"].replace("/", "--"))
    commit = "5" * 40
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    if file_name.endswith(".safetensors"):
        save_file(state, str(repo / "snapshots" / commit / file_name))
    else:
        torch.save(state, repo / "snapshots" / commit / file_name)
    return state


def test_importing_the_engine_first_keeps_huggingface_offline(tmp_path):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: importing the engine first must set it, so a missing
    file fails at once instead of after 47 s of retries."""
    code = ("import engine.model.zoo, timm, huggingface_hub.constants as c\n"
            "assert c.HF_HUB_OFFLINE, 'huggingface_hub is online'\n"
            "try:\n    timm.create_model('resnet18.a1_in1k', pretrained=True)\n"
            "except Exception as exc:\n    print(type(exc).__name__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_OFFLINE")}
    env["HF_HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "LocalEntryNotFoundError"


def test_listed_with_family_parameters_and_cached_weights(capsys):
    names = zoo.list_architectures(timm=True)
    assert RESNET in names and "timm:convnext_tiny.in12k_ft_in1k" in names and names.index(RESNET) > 80
    assert zoo.list_architectures() == names[:len(zoo.list_architectures())]  # torchvision's first, as before
    info = zoo.arch_info(RESNET)
    assert info.family == "resnet (timm)" and info.num_params == 469_688 and not info.weights_cached
    assert info.num_params == sum(p.numel() for p in zoo.build_model(RESNET).parameters())
    cache_weights(RESNET)
    assert zoo.arch_info(RESNET).weights_cached
    assert cli.main(["models", "--timm"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(RESNET + " "))
    assert row.split() == [RESNET, "0.5M", "yes", "resnet", "(timm)"]


def test_preprocessing_is_timms_for_the_tag():
    vit = zoo.arch_info("timm:vit_small_patch16_224.augreg_in21k_ft_in1k").preprocess
    assert vit.mean == vit.std == (0.5, 0.5, 0.5) and (vit.crop, vit.resize, vit.interpolation) == (224, 248, "bicubic")
    tv = zoo.arch_info("timm:resnet50.tv_in1k").preprocess
    assert tv.mean == pytest.approx((0.485, 0.456, 0.406)) and (tv.crop, tv.resize) == (224, 256)
    assert zoo.arch_info("timm:resnet50.a1_in1k").preprocess.resize == 235  # crop_pct 0.95
    assert zoo.arch_info(VIT).fixed_size == 160 and zoo.arch_info(RESNET).fixed_size is None


@pytest.mark.parametrize(("name", "file_name"), [(RESNET, "model.safetensors"), (VIT, "pytorch_model.bin")])
def test_pretrained_weights_from_the_hugging_face_cache(name, file_name):
    problem = zoo.weights_problem(name, "pretrained")
    assert "not on this machine" in problem and "Hugging Face cache" in problem and "never downloads" in problem
    with pytest.raises(WeightsError, match="not on this machine"):
        zoo.build_model(name, "pretrained")
    state = cache_weights(name, file_name=file_name)
    assert zoo.weights_problem(name, "pretrained") is None
    model = zoo.build_model(name, "pretrained")
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("name", "head", "blocks"), [
    (RESNET, ["fc"], ["conv1", "layer1", "layer2", "layer3", "layer4"]),
    (CONVNEXT, ["head.fc"], ["stem", "stages.0", "stages.1", "stages.2", "stages.3"]),
    (VIT, ["head"], ["patch_embed"] + [f"blocks.{i}" for i in range(6)]),
    (EFFICIENTNET, ["classifier"], ["conv_stem"] + [f"blocks.{i}" for i in range(5)]),
])
def test_thaws_head_and_timms_groups_as_blocks(tmp_path, name, head, blocks):
    p = proj.Project(base_dir=tmp_path)
    p.set("model.arch", name)
    p.set("model.weights", "none")
    p.set("head.kind", "mlp")
    p.set("head.hidden", [16])
    p.set("freeze.preset", "last_blocks")
    p.set("freeze.last_blocks", 2)
    built = assemble(p, 3)
    assert built.head_paths == head and isinstance(built.model.get_submodule(head[0]), torch.nn.Sequential)
    checklist = Checklist(built.model, built.head_paths)
    assert checklist.blocks == blocks
    params = dict(built.model.named_parameters())
    assert not any(t.requires_grad for n, t in params.items() if n.startswith(blocks[0] + "."))
    assert all(t.requires_grad for n, t in params.items() if n.startswith((blocks[-1] + ".", head[0] + ".")))
    size = zoo.arch_info(name).fixed_size or 32
    assert built.model.eval()(torch.randn(2, 3, size, size)).shape == (2, 3)


def test_a_project_file_names_a_timm_model(tmp_path):
    (tmp_path / "p.thaw.toml").write_text('[model]\narch = "timm:convnext_atto.d2_in1k"\nweights = "none"\n')
    p = proj.load(tmp_path / "p.thaw.toml")
    assert not [e for e in preflight(p) if e.key.startswith("model.")]
    p.model.arch = "timm:convnext_nope"
    found = {e.key: e.problem for e in preflight(p)}
    assert "unknown architecture 'timm:convnext_nope'" in found["model.arch"] and "--timm" in found["model.arch"]
    with pytest.raises(ProjectError, match="unknown architecture"):
        zoo.arch_info("timm:convnext_nope")


def test_a_run_trains_resumes_and_evaluates(project_factory):
    """Pretrained weights from the cache, the last block and the head trained (BatchNorm frozen below), a stop
    after the first epoch resumed, the frozen tensors unchanged, timm's preprocessing kept in the run."""
    state = cache_weights(RESNET, seed=3)
    p = project_factory(per_class=4, model__arch=RESNET, model__weights="pretrained", freeze__preset="last_blocks",
                        train__epochs=2, train__batch_size=3)
    stop = threading.Event()

    def stop_after_first(event):
        if type(event).__name__ == "EpochEnded":
            stop.set()

    run_dir, result = folder.train(p, callbacks=[stop_after_first], stop=stop)
    assert result.summary["epochs_completed"] == 1 and (run_dir / "checkpoint.safetensors").is_file()
    run_dir, result = folder.resume(proj.load(run_dir / "project.thaw.toml"), run_dir)
    s = result.summary
    assert s["epochs_completed"] == 2 and s["resumed_from_epoch"] == 1 and s["frozen_verified"]
    assert list(s["preprocess"]["mean"]) == [0.5, 0.5, 0.5] and s["preprocess"]["resize"] == 168
    kept = load_file(str(run_dir / "model.safetensors"))
    assert torch.equal(kept["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])  # frozen: as pretrained
    assert not torch.equal(kept["layer4.0.conv1.weight"], state["layer4.0.conv1.weight"])  # trained
    assert kept["fc.weight"].shape[0] == 3 and json.loads((run_dir / "evaluation.json").read_text())["images"] > 0
    trained = load_run(run_dir)  # the Results tab's model: fed as it trained, its Grad-CAM over the picture
    assert list(trained.transform.transforms[-1].mean) == [0.5, 0.5, 0.5]
    image = evaluation.read(run_dir).predictions.paths[0]
    view, heat = explain(trained, image, 0)
    assert heat.shape == view.size[::-1] and heat.max() > 0


def test_the_advisor_reads_a_timm_models_features(project_factory):
    """The advisor's cut points are timm's blocks; the source head's ImageNet classes give LEEP and NCE."""
    cache_weights(RESNET)
    p = project_factory(per_class=4, model__arch=RESNET, model__weights="pretrained")
    measured = measure(p)
    assert [d.after for d in measured.depths] == ["layer4", "layer3", "layer2", "layer1"]
    assert measured.leep is not None and measured.nce is not None and not measured.source_note


def test_weights_published_without_a_classifier(project_factory):
    """Self-supervised weights (here ConvNeXt-V2's FCMAE: no classifier, num_classes 0) get Thaw's head where
    timm's classifier goes, not in place of a Linear inside the last block; they train, and the advisor reads
    them, saying why LEEP is missing."""
    name = "timm:convnextv2_atto.fcmae"
    import timm

    torch.manual_seed(0)
    headless = timm.create_model(name[len("timm:"):], pretrained=False).state_dict()
    assert not any(k.startswith("head.fc.") for k in headless)
    cache_weights(name, state=headless)
    p = project_factory(per_class=4, model__arch=name, model__weights="pretrained",
                        freeze__preset="feature_extraction", train__epochs=1, train__batch_size=3)
    built = assemble(p, 3)
    assert built.head_paths == ["head.fc"] and Checklist(built.model, built.head_paths).blocks[-1] == "stages.3"
    model = zoo.build_model(name, "pretrained")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in headless.items())
    _, result = folder.train(p)
    assert result.summary["epochs_completed"] == 1 and result.summary["frozen_verified"]
    measured = measure(p)
    assert measured.leep is None and "classes are not known" in measured.source_note


def test_feature_extraction_uses_the_feature_cache(project_factory):
    cache_weights(CONVNEXT)
    p = project_factory(per_class=4, model__arch=CONVNEXT, model__weights="pretrained",
                        freeze__preset="feature_extraction", train__epochs=2)
    _, result = folder.train(p)
    assert result.summary["feature_cache"] and result.summary["frozen_verified"]


def test_a_timm_models_weights_from_a_file(tmp_path):
    """A file of one's own (a DDP state dict inside timm's training checkpoint) loads through Thaw's loader, with
    the same recognition as any other; a torchvision model's file for a timm model is named a misfit."""
    torch.manual_seed(5)
    state = zoo.build_model(EFFICIENTNET).state_dict()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "last.pth.tar")
    assert zoo.weights_problem(EFFICIENTNET, str(tmp_path / "last.pth.tar")) is None
    notes = []
    model = zoo.build_model(EFFICIENTNET, str(tmp_path / "last.pth.tar"), notes=notes)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert notes[0] == "last.pth.tar: read the state dict under 'state_dict'; not used: epoch"
    assert notes[1] == f"last.pth.tar: removed prefix 'module.' from {len(state)} keys"
    save_file(zoo.build_model("squeezenet1_1").state_dict(), str(tmp_path / "squeeze.safetensors"))
    problem = zoo.weights_problem(EFFICIENTNET, str(tmp_path / "squeeze.safetensors"))
    assert "does not fit this architecture" in problem and "look like squeezenet1_1 weights" in problem


@pytest.mark.parametrize(("name", "layer"), [(VIT, "blocks.5.norm1"), (CONVNEXT, "norm_pre"), (EFFICIENTNET, "bn2")])
def test_grad_cam_reads_a_late_layer(name, layer):
    """The Results tab's Grad-CAM of a timm model: the last feature map before the pooling; for a ViT the last
    block's input norm, as for torchvision's (the patch embedding, the only 4-D map of a timm ViT, would show
    edges rather than evidence)."""
    from engine.results import saliency

    torch.manual_seed(0)
    model = zoo.build_model(name).eval()
    x = torch.randn(1, 3, 160, 160)
    assert saliency.target_layer(model, name, x) == layer
    assert saliency.saliency(model, x, target=0, arch=name).amax() == 1.0  # a map, not a blank one
