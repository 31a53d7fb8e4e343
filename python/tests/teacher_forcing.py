"""Logits of a transformers causal LM fed its own cache one token at a time
(the next tokens given, not generated): a prompt, then decode steps, as a
serving loop runs them, without greedy decoding's divergence at bf16."""
import inspect


def prompt_and_step_logits(model, ids, prompt):
    """Float32 logits [B, 1 + S - prompt, vocab]: the prompt's last position,
    then each of ids[:, prompt:] fed with the model's cache."""
    import torch

    # transformers 5.25 renamed `past_key_values` to `cache` (the old name
    # goes in 5.40).
    name = ("cache" if "cache" in inspect.signature(model.forward).parameters
            else "past_key_values")
    # Positions given, as generate() gives them: Bamba's forward counts from
    # 0 at every call without them.
    batch = ids.shape[0]
    with torch.no_grad():
        out = model(ids[:, :prompt], use_cache=True,
                    position_ids=torch.arange(prompt).expand(batch, -1))
        rows = [out.logits[:, -1:]]
        for t in range(prompt, ids.shape[1]):
            out = model(ids[:, t:t + 1], use_cache=True, **{name: out[name]},
                        position_ids=torch.full((batch, 1), t))
            rows.append(out.logits)
    return torch.cat(rows, dim=1).float()
