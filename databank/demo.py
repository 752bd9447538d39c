"""The demo bank: real files from the repository's ``data/`` large enough for tiles, plus simulated datasets
with known organisation (labelled as simulated in title and metadata). Every dataset goes through
the same ingest as an upload: simulated files are written as ThunderSTORM CSVs with Fiji-style ROI
files (X,Y in micrometres) first."""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from compute import simulate
from config import private_file
from databank.ingest import StagedFile, ingest_dataset
from databank.models import Dataset, db
from databank.users import create_user, end_sessions, find_user

DEMO_USER = "demo"
DEMO_EMAIL = "demo@nano-org.invalid"
FIELD_NM = 18_000.0      # simulated fields are 18 x 18 um


@dataclass(frozen=True)
class SimulatedDataset:
    title: str
    protein: str
    uniprot_id: str
    cell_type: str
    fluorophore: str
    modality: str
    organisation: str            # csr, small_dense, large_sparse
    densities: tuple[float, ...]   # loc/um^2, one file per entry


SIMULATED = (
    SimulatedDataset("CD3ζ in Jurkat, resting (simulated)", "CD3ζ", "P20963", "Jurkat", "mEos3.2", "PALM", "small_dense", (300, 450)),
    SimulatedDataset("CD3ζ in Jurkat, activated (simulated)", "CD3ζ", "P20963", "Jurkat", "mEos3.2", "PALM", "small_dense", (600, 800)),
    SimulatedDataset("LAT in Jurkat (simulated)", "LAT", "O43561", "Jurkat", "Alexa Fluor 647", "dSTORM", "small_dense", (250, 350)),
    SimulatedDataset("SLP76 in Jurkat (simulated)", "SLP76", "Q13094", "Jurkat", "mEos3.2", "PALM", "large_sparse", (300, 400)),
    SimulatedDataset("EGFR in COS-7 (simulated)", "EGFR", "P00533", "COS-7", "Alexa Fluor 647", "dSTORM", "large_sparse", (400, 250)),
    SimulatedDataset("EGFR in HeLa (simulated)", "EGFR", "P00533", "HeLa", "Alexa Fluor 647", "dSTORM", "large_sparse", (150, 200)),
    SimulatedDataset("Transferrin receptor in HeLa (simulated)", "TfR1", "P02786", "HeLa", "Alexa Fluor 647", "dSTORM", "csr", (300, 350)),
    SimulatedDataset("Transferrin receptor in COS-7 (simulated)", "TfR1", "P02786", "COS-7", "Alexa Fluor 647", "dSTORM", "csr", (150, 600)),
    SimulatedDataset("CD45 in Jurkat (simulated)", "CD45", "P08575", "Jurkat", "Alexa Fluor 647", "dSTORM", "csr", (400, 450)),
    SimulatedDataset("FGFR1 in MCF7 (simulated)", "FGFR1", "P11362", "MCF7", "Alexa Fluor 647", "dSTORM", "small_dense", (200, 300)),
    SimulatedDataset("Tetraspanin CD81 in HeLa (simulated)", "CD81", "P60033", "HeLa", "mEos3.2", "PALM", "small_dense", (350, 300)),
    SimulatedDataset("Integrin β1 in COS-7 (simulated)", "Integrin β1", "P05556", "COS-7", "mEos3.2", "PALM", "large_sparse", (500, 450)),
)

ORGANISATION = {
    "csr": dict(),
    "small_dense": dict(cluster_radius_nm=30.0, locs_per_cluster=25.0, fraction_clustered=0.7),
    "large_sparse": dict(cluster_radius_nm=120.0, locs_per_cluster=40.0, fraction_clustered=0.6),
}
ORGANISATION_TEXT = {
    "csr": "complete spatial randomness (no clustering)",
    "small_dense": "small dense clusters (Thomas process, sigma 30 nm, 25 localisations per cluster, 70 % clustered)",
    "large_sparse": "large sparse clusters (Thomas process, sigma 120 nm, 40 localisations per cluster, 60 % clustered)",
}

REAL_FILES = (
    dict(relative="thunderstorm/LacY-eYFP_Ecoli_01_storm.csv",
         metadata=dict(title="LacY-eYFP in E. coli (ColiCoords example)", modality="PALM", software="ThunderSTORM",
                       fluorophore="eYFP", protein="LacY", uniprot_id="P02920", cell_type="E. coli",
                       tags="membrane transporter, bacteria, real data",
                       experimental_details="Real localisations of the lactose permease LacY fused to eYFP in E. coli "
                                            "(39.6 x 32 um field, many cells). Source: Jhsmit/ColiCoords examples, MIT licence.",
                       licence_url="https://opensource.org/licenses/MIT",
                       repository_url="https://github.com/Jhsmit/ColiCoords", pixel_size_nm=80.0)),
)


PASSWORD_FILE = "demo_password"           # in the instance folder, 0600
RETIRED_PASSWORD = "nanoorg-demo"           # documented by earlier versions: replaced at start


def _new_demo_password(settings, say) -> str:
    """NANOORG_DEMO_PASSWORD, else a random password kept (0600) in <instance>/demo_password and
    shown once through ``say``."""
    if settings.demo_password:
        return settings.demo_password
    password = secrets.token_urlsafe(18)
    path = Path(settings.instance_dir) / PASSWORD_FILE
    path.unlink(missing_ok=True)
    private_file(path, lambda: password + "\n")
    say(f"demo owner '{DEMO_USER}': password {password} (shown once; kept in {path}, readable by you only)")
    return password


def _demo_owner(settings, say):
    user = find_user(DEMO_USER)
    if user is None:
        user = create_user(DEMO_USER, DEMO_EMAIL, _new_demo_password(settings, say))
    return user


def retire_documented_password(settings, progress=None) -> bool:
    """Give the demo owner a new password if it still has the one earlier versions documented
    (and NANOORG_DEMO_PASSWORD does not set that one on purpose); its sessions end. True if changed."""
    user = find_user(DEMO_USER)
    if user is None or settings.demo_password == RETIRED_PASSWORD or not user.check_password(RETIRED_PASSWORD):
        return False
    user.set_password(_new_demo_password(settings, progress or (lambda message: None)))
    db.session.commit()
    end_sessions(user)
    return True


def write_thunderstorm_csv(path: Path, pattern: simulate.SimulatedPattern) -> None:
    """Write a simulated pattern the way ThunderSTORM exports it (quoted header, 1-based frames)."""
    header = '"id","frame","x [nm]","y [nm]","intensity [photon]","uncertainty [nm]"\n'
    n = len(pattern.x)
    photons = 1500 + 10 * (np.arange(n) % 97)
    body = np.column_stack((np.arange(1, n + 1), pattern.frame + 1, pattern.x, pattern.y, photons, pattern.precision))
    with open(path, "w") as handle:
        handle.write(header)
        np.savetxt(handle, body, fmt=["%d", "%d", "%.2f", "%.2f", "%.1f", "%.2f"], delimiter=",")


def write_fiji_roi(path: Path, vertices_um: np.ndarray) -> None:
    """A polygon as Fiji's 'List coordinates' CSV export: header X,Y, micrometres."""
    with open(path, "w") as handle:
        handle.write("X,Y\n")
        for x, y in vertices_um:
            handle.write(f"{x:.4f},{y:.4f}\n")


def _cell_outline_um(seed: int) -> np.ndarray:
    """An irregular cell-like polygon inside the 18 x 18 um field (about 16 um across)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    radius = 7.9 + 0.5 * np.sin(3 * angles + rng.uniform(0, 6)) + rng.uniform(-0.2, 0.2, angles.size)
    centre = FIELD_NM / 2000.0
    return np.column_stack((centre + radius * np.cos(angles), centre + radius * np.sin(angles)))


def _simulate_file(spec: SimulatedDataset, density: float, seed: int) -> simulate.SimulatedPattern:
    if spec.organisation == "csr":
        return simulate.simulate_csr(density, FIELD_NM, FIELD_NM, precision_nm=12.0, seed=seed)
    return simulate.simulate_clustered(density, FIELD_NM, FIELD_NM, precision_nm=12.0, seed=seed,
                                       **ORGANISATION[spec.organisation])


def _simulated_metadata(spec: SimulatedDataset) -> dict:
    antibodies = dict(primary_antibody=f"anti-{spec.protein} (simulated)", primary_antibody_ref="SIM-0001",
                      secondary_antibody="goat anti-rabbit AF647 (simulated)", secondary_antibody_ref="SIM-0002") \
        if spec.modality == "dSTORM" else {}
    return dict(title=spec.title, modality=spec.modality, software="ThunderSTORM", fluorophore=spec.fluorophore,
                protein=spec.protein, uniprot_id=spec.uniprot_id, cell_type=spec.cell_type,
                tags=f"simulated, {spec.organisation.replace('_', ' ')}",
                experimental_details=("SIMULATED data generated by nano-org's simulator for demonstration: "
                                      f"{ORGANISATION_TEXT[spec.organisation]}; densities "
                                      f"{', '.join(f'{d:g}' for d in spec.densities)} loc/um^2, 12 nm precision, "
                                      "18 x 18 um fields with one polygon ROI each."),
                drift_correction=True, blink_correction=False, pixel_size_nm=100.0, **antibodies)


def _exists(title: str) -> bool:
    return db.session.scalar(select(Dataset.id).where(func.lower(Dataset.title) == title.lower())) is not None


def seed_demo(settings, progress=None, *, force: bool = False) -> list[int]:
    """Create the demo bank if the bank is empty (or add missing demo datasets with ``force``).

    Returns the ids of the datasets created. ``progress(message)`` is called once per dataset.
    """
    say = progress or (lambda message: None)
    if not force and db.session.scalar(select(func.count(Dataset.id))):
        return []
    owner = _demo_owner(settings, say)
    created = []
    real = list(REAL_FILES)
    missing = [r["relative"] for r in real if not (Path(settings.demo_data_dir) / r["relative"]).is_file()]
    if missing:
        raise FileNotFoundError(f"demo bank: {', '.join(missing)} not found in {settings.demo_data_dir} "
                                "(the repository's data/ folder; set NANOORG_DEMO_DATA to another copy)")
    total = len(real) + len(SIMULATED)
    step = 0
    for entry in real:
        step += 1
        if _exists(entry["metadata"]["title"]):
            continue
        say(f"[{step}/{total}] {entry['metadata']['title']}")
        path = Path(settings.demo_data_dir) / entry["relative"]
        dataset = ingest_dataset([StagedFile(path=path, name=path.name)], dict(entry["metadata"]), owner,
                                 visibility="public", settings=settings)
        created.append(dataset.id)
    for number, spec in enumerate(SIMULATED):
        step += 1
        if _exists(spec.title):
            continue
        say(f"[{step}/{total}] {spec.title}")
        with tempfile.TemporaryDirectory(dir=settings.staging_dir) as folder:
            files = []
            for k, density in enumerate(spec.densities, start=1):
                stem = f"{spec.protein.replace(' ', '_')}_{spec.cell_type.replace(' ', '_')}_cell{k}"
                detection = Path(folder) / f"{stem}.csv"
                write_thunderstorm_csv(detection, _simulate_file(spec, density, seed=1000 * number + k))
                roi = Path(folder) / f"{stem}_ROI_1.csv"
                write_fiji_roi(roi, _cell_outline_um(1000 * number + k))
                files += [StagedFile(detection, detection.name), StagedFile(roi, roi.name)]
            dataset = ingest_dataset(files, _simulated_metadata(spec), owner, visibility="public",
                                     is_simulated=True, settings=settings)
            created.append(dataset.id)
    return created
