"""Loading the user's model and saving/loading candidates.

MODEL is one of: `module:factory` or `file.py:factory` (a function returning an nn.Module; `--weights`
loads a state_dict into it), a saved module (`.pt`/`.pth`, pickled or TorchScript), a sentence-transformers
or Hugging Face model directory (encoded by mean pooling), or an `.onnx` file.

A candidate is a directory with `manifest.json` and either `model.onnx` or a weight-free skeleton
(`skeleton.pt`, the module on the meta device) plus its state (`state.pt`), which also holds torchao's
quantised tensors. torch, onnxruntime and transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suanli.core.errors import BadInput

MANIFEST = "manifest.json"


@dataclass
class Source:
    """The loaded original: a torch module or an ONNX file, fed arrays ("tensor") or sentences ("text")."""

    format: str  # "torch" or "onnx"
    io: str  # "tensor" or "text"
    module: Any = None
    onnx_path: Path | None = None
    tokenizer: Any = None
    max_length: int = 256
    normalize: bool = False
    import_paths: list[str] = field(default_factory=list)
    name: str = "model"


def load_source(spec: str, weights: str | None = None) -> Source:
    """Load MODEL as the user named it; any failure is one BadInput line naming `model`."""
    path = Path(spec)
    if path.is_dir():
        return _load_hf_dir(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise BadInput("model", spec, "is not a file")
        try:
            import onnx

            onnx.checker.check_model(str(path))
        except Exception as e:
            raise BadInput("model", spec, f"is not a loadable ONNX model ({_first_line(e)})") from None
        return Source("onnx", "tensor", onnx_path=path.resolve(), name=path.stem)
    if path.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt") and ":" not in path.name:
        return _load_torch_file(path, spec)
    if ":" in spec:
        return _load_factory(spec, weights)
    if path.exists():
        raise BadInput(
            "model", spec, "must be .pt/.pth (a saved module), .onnx, a model directory or file.py:factory"
        )
    raise BadInput("model", spec, "does not exist (give a file, a model directory or module:factory)")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def _load_torch_file(path: Path, spec: str) -> Source:
    import torch

    if not path.is_file():
        raise BadInput("model", spec, "is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        try:
            obj = torch.jit.load(str(path), map_location="cpu")
        except Exception:
            raise BadInput("model", spec, f"cannot be loaded by torch.load ({_first_line(e)})") from None
    if isinstance(obj, dict):
        raise BadInput(
            "model",
            spec,
            "is a state_dict, not a module",
            hint="give the architecture as file.py:factory and this file as --weights",
        )
    if not isinstance(obj, torch.nn.Module):
        raise BadInput("model", spec, f"holds a {type(obj).__name__}, not a torch.nn.Module")
    obj.eval()
    return Source("torch", "tensor", module=obj, name=path.stem)


def _load_factory(spec: str, weights: str | None) -> Source:
    import torch

    from suanli.compress.tasks import load_function

    fn = load_function(spec, "model")
    module_name = spec.rpartition(":")[0]
    paths = [str(Path(module_name).resolve().parent)] if module_name.endswith(".py") else []
    try:
        module = fn()
    except Exception as e:
        raise BadInput("model", spec, f"factory failed ({_first_line(e)})") from None
    if not isinstance(module, torch.nn.Module):
        raise BadInput("model", spec, f"factory returned a {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        wpath = Path(weights)
        if not wpath.is_file():
            raise BadInput("weights", weights, "is not a file")
        try:
            state = torch.load(wpath, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as e:
            raise BadInput(
                "weights", weights, f"cannot be loaded into the model ({_first_line(e)})"
            ) from None
    module.eval()
    name = Path(module_name).stem if module_name.endswith(".py") else module_name.rsplit(".", 1)[-1]
    return Source("torch", "tensor", module=module, import_paths=paths, name=name)


def _load_hf_dir(path: Path) -> Source:
    if not (path / "config.json").is_file():
        raise BadInput("model", str(path), "is a directory without config.json (not a Hugging Face model)")
    normalize = False
    max_length = 256
    modules = path / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text())
            normalize = any("Normalize" in e.get("type", "") for e in entries)
            pooling = next((e for e in entries if "Pooling" in e.get("type", "")), None)
            if pooling:
                pconf = json.loads((path / pooling["path"] / "config.json").read_text())
                if not pconf.get("pooling_mode_mean_tokens", True):
                    raise BadInput("model", str(path), "only mean pooling is supported for sentence models")
            sbert = path / "sentence_bert_config.json"
            if sbert.is_file():
                max_length = int(json.loads(sbert.read_text()).get("max_seq_length", max_length))
        except BadInput:
            raise
        except Exception as e:
            raise BadInput("model", str(path), f"has an unreadable modules.json ({_first_line(e)})") from None
    try:
        from transformers import AutoModel, AutoTokenizer

        module = AutoModel.from_pretrained(str(path), attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except ImportError:
        raise BadInput(
            "model", str(path), "needs the transformers package to load a model directory"
        ) from None
    except Exception as e:
        raise BadInput("model", str(path), f"cannot be loaded ({_first_line(e)})") from None
    module.eval()
    return Source(
        "torch",
        "text",
        module=module,
        tokenizer=tokenizer,
        max_length=max_length,
        normalize=normalize,
        name=path.name if path.name != "model" else path.parent.name,
    )


# ---------------------------------------------------------------- candidates on disk


def save_torch(module: Any, skeleton_of: Any, out: Path, manifest: dict) -> Path:
    """Save `module`'s state with a weight-free skeleton of `skeleton_of` (same structure, unquantised)."""
    import copy

    import torch

    out.mkdir(parents=True, exist_ok=True)
    skeleton = copy.deepcopy(skeleton_of).to("meta")
    torch.save(skeleton, out / "skeleton.pt")
    state = dict(module.state_dict())
    state["__buffers__"] = {k: v for k, v in module.named_buffers()}
    torch.save(state, out / "state.pt")
    paths = list(manifest.get("import_paths", []))
    for sub in module.modules():
        mod = sys.modules.get(type(sub).__module__)
        file = getattr(mod, "__file__", None)
        if file and "." not in type(sub).__module__ and str(Path(file).resolve().parent) not in paths:
            paths.append(str(Path(file).resolve().parent))
    manifest = {**manifest, "import_paths": paths, "format": "torch", "files": ["skeleton.pt", "state.pt"]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return out


def save_tokenizer(source: Source, out: Path) -> None:
    """Sentence models carry their tokenizer (not counted in the model's size)."""
    if source.tokenizer is not None:
        source.tokenizer.save_pretrained(str(out / "tokenizer"))


def read_manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text())


def model_bytes(path: Path) -> int:
    """Bytes of the model files (weights and graph; not the tokenizer or the manifest)."""
    manifest = read_manifest(path)
    return sum((path / f).stat().st_size for f in manifest["files"] if (path / f).exists())


def load_torch(path: Path, device: str = "cpu") -> Any:
    """Rebuild a saved torch candidate: skeleton + state (assigned, so quantised tensors stay quantised)."""
    import torch

    manifest = read_manifest(path)
    for p in manifest.get("import_paths", []):
        if p not in sys.path:
            sys.path.insert(0, p)
    module = torch.load(path / "skeleton.pt", weights_only=False)
    state = torch.load(path / "state.pt", map_location=device, weights_only=False)
    buffers = state.pop("__buffers__", {})
    module.load_state_dict(state, assign=True, strict=False)
    for name, buf in buffers.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        target._buffers[leaf] = buf.to(device)
    module.eval()
    return module.to(device)


def mean_pool(hidden: Any, mask: Any, normalize: bool) -> Any:
    """Sentence-transformers' mean pooling (and optional L2 normalisation)."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    emb = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(emb, dim=-1) if normalize else emb


class Runner:
    """Runs a candidate on a batch: arrays in, arrays out; or sentences in, embeddings out."""

    def __init__(self, path: Path, threads: int = 2, device: str = "cpu") -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.io = self.manifest["io"]
        self.format = self.manifest["format"]
        self.device = device
        self.normalize = bool(self.manifest.get("normalize", False))
        self.max_length = int(self.manifest.get("max_length", 256))
        self.tokenizer = None
        if self.io == "text":
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path / "tokenizer"))
        if self.format == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self.session = ort.InferenceSession(
                str(self.path / self.manifest["files"][0]), opts, providers=["CPUExecutionProvider"]
            )
            self.input_names = [i.name for i in self.session.get_inputs()]
        else:
            import torch

            torch.set_num_threads(threads)
            self.module = load_torch(self.path, device)

    def __call__(self, batch: Any) -> np.ndarray:
        if self.io == "text":
            enc = self.tokenizer(
                list(batch), padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            if self.format == "onnx":
                feed = {k: enc[k].astype(np.int64) for k in self.input_names}
                return self.session.run(None, feed)[0]
            import torch

            with torch.inference_mode():
                feed = {k: torch.from_numpy(v.astype(np.int64)).to(self.device) for k, v in enc.items()}
                hidden = self.module(**feed).last_hidden_state
                return mean_pool(hidden, feed["attention_mask"], self.normalize).float().cpu().numpy()
        if self.format == "onnx":
            return self.session.run(None, {self.input_names[0]: np.ascontiguousarray(batch)})[0]
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
            return out.float().cpu().numpy()


def load(path: str | Path, threads: int = 2, device: str = "cpu") -> Runner:
    """Load a compressed model (the `model/` folder of a compress output) ready to run."""
    p = Path(path)
    if (p / "model" / MANIFEST).is_file():
        p = p / "model"
    if not (p / MANIFEST).is_file():
        raise BadInput("path", str(path), "is not a suanli compressed model (no manifest.json)")
    return Runner(p, threads=threads, device=device)
