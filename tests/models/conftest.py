"""A toy organisation shared by the model tests: 400 ordinary user-days and 10 obvious outliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

N_ENTITIES = 20
DAYS_PER_ENTITY = 20
N_FEATURES = 5
N_OUTLIERS = 10


@dataclass(frozen=True)
class ToyOrg:
    X: NDArray[np.float64]
    entities: NDArray[np.str_]
    groups: NDArray[np.str_]
    is_outlier: NDArray[np.bool_]

    @property
    def context(self) -> dict[str, NDArray[np.str_]]:
        return {"entities": self.entities, "groups": self.groups}


def make_toy_org(seed: int = 0) -> ToyOrg:
    """Two departments with different habits; outliers are existing users on a wild day."""
    rng = np.random.default_rng(seed)
    entity_ids = np.repeat(np.arange(N_ENTITIES), DAYS_PER_ENTITY)
    department = np.where(entity_ids < N_ENTITIES // 2, "sales", "engineering")
    # Per-entity daily rates: sales log on and e-mail a lot, engineers touch many hosts; the
    # last column is sparse (USB), zero for most user-days.
    base_rates = np.where(
        (department == "sales")[:, None],
        np.array([20.0, 30.0, 2.0, 1.0, 0.05]),
        np.array([8.0, 5.0, 12.0, 6.0, 0.05]),
    )
    entity_factor = rng.uniform(0.7, 1.3, size=N_ENTITIES)[entity_ids][:, None]
    counts = rng.poisson(base_rates * entity_factor).astype(np.float64)
    outlier_entities = rng.choice(N_ENTITIES, size=N_OUTLIERS, replace=False)
    outlier_counts = rng.poisson([60.0, 80.0, 60.0, 40.0, 30.0], size=(N_OUTLIERS, N_FEATURES))
    X = np.log1p(np.vstack([counts, outlier_counts.astype(np.float64)]))
    entity_numbers = np.concatenate([entity_ids, outlier_entities])
    entities = np.array([f"user{e:02d}" for e in entity_numbers], dtype=np.str_)
    groups = np.where(entity_numbers < N_ENTITIES // 2, "sales", "engineering").astype(np.str_)
    is_outlier = np.zeros(X.shape[0], dtype=bool)
    is_outlier[-N_OUTLIERS:] = True
    return ToyOrg(X=X, entities=entities, groups=groups, is_outlier=is_outlier)


@pytest.fixture(scope="session")
def toy_org() -> ToyOrg:
    return make_toy_org()
