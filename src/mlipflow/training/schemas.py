"""Documents of the training stage (what its jobs return): ids, errors and figures; models live in the registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelDoc(BaseModel):
    """A trained model (or committee) as a job returns it; the record itself is in the model registry.

    ``errors``: split -> {``rmse_e_per_atom`` (eV/atom), ``rmse_f`` (eV/Å), ``n_frames``} over all config types.
    """

    model_id: str = Field(description="registry id")
    kind: str = Field(description="mace, finetune or committee")
    dataset_version: str | None = Field(None, description="dataset version it was trained on")
    errors: dict[str, dict[str, float]] = Field(default_factory=dict, description="split -> errors (eV/atom, eV/Å)")
    wall_time: float | None = Field(None, description="training wall time (s), summed over members")
    device: str | None = Field(None, description="cpu or cuda")
    members: list[str] = Field(default_factory=list, description="member ids (committees)")
    kept_epoch: int | None = Field(None, description="0-based epoch whose weights were kept (best validation)")
    warm_start: str | None = Field(None, description="model the training started from (warm start), if any")
    spread: dict[str, float] = Field(
        default_factory=dict,
        description="committees: largest-atom force spread (eV/Å) on the validation frames: p50, p90, max, mean")
    forgetting: dict[str, Any] = Field(default_factory=dict, description="fine-tuning: forgetting ratios")
