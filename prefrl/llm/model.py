"""Policies: a tiny character-level GPT-2 for tests and the demo, and any causal LM from a directory or hub id.

Both go through `save_pretrained` / `from_pretrained`, so the tiny model takes the same path a user's model does.
"""

from __future__ import annotations

import logging
import string
import warnings
from pathlib import Path

import torch

from prefrl.errors import PrefrlError

log = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def quiet_transformers() -> None:
    """Keep transformers, TRL and datasets to errors: no progress bars, no deprecation (FutureWarning) notices, no
    info messages on stdout/stderr. Our commands report through `logging` instead. Idempotent."""
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for module in ("transformers", "trl", "accelerate", "datasets"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)


def char_tokenizer():  # -> PreTrainedTokenizerFast (transformers is imported lazily: it is an optional extra)
    """A character-level tokenizer over printable ASCII, with pad, bos, eos and unk tokens.

    Example:
        >>> tok = char_tokenizer()
        >>> tok.decode(tok("letter: q\\n")["input_ids"]) == "letter: q\\n"
        True
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, UNK]
    chars = sorted(set(string.printable))
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK, padding_side="left", clean_up_tokenization_spaces=False)


def build_tiny_model(out_dir: str | Path, *, layers: int = 2, width: int = 64, heads: int = 2,
                     context: int = 64, seed: int = 0) -> Path:
    """Write an untrained GPT-2 (`layers` x `width`) with the character tokenizer to `out_dir`; returns it.

    Example:
        >>> model, tok = load_policy(build_tiny_model(tmp_path / "tiny"), "cpu")
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    quiet_transformers()
    tok = char_tokenizer()
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=context, n_embd=width, n_layer=layers, n_head=heads,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when present, else cpu; "cuda" without a GPU is the user's error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PrefrlError("--device cuda, but torch sees no GPU: use --device cpu (or auto)")
    return torch.device(device)


def load_policy(path: str | Path, device: str | torch.device = "cpu"):  # -> (PreTrainedModel, tokenizer)
    """A causal LM and its tokenizer from a directory (or a hub id), ready to sample: left padding, a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    dev = resolve_device(device) if isinstance(device, str) else device
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise PrefrlError(f"cannot load a causal LM from {path} ({str(e).splitlines()[0]}): pass a directory "
                          "written by `save_pretrained` (e.g. by `prefrl llm sft`)") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(dev), tok  # type: ignore[arg-type]


@torch.no_grad()
def sample(model, tok, prompts: list[str], *, max_new_tokens: int, temperature: float = 1.0,
           batch_size: int = 64) -> list[str]:
    """One completion per prompt (text after the prompt, special tokens dropped)."""
    out: list[str] = []
    model.eval()
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        gen = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                             max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out
