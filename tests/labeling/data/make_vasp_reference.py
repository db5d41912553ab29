"""Write the recorded VASP reference used by ``test_vasp.py`` (run once; the output is committed).

No VASP binary or licence is available here, so this is **not a VASP run**:

* ``inputs/`` are the files mlipflow's :class:`~mlipflow.labeling.vasp.VaspLabeler` input set writes for the
  structure (POTCAR as ``POTCAR.spec`` symbols only); the fake run checks that future input sets still
  match them.
* ``outputs/vasprun.xml`` and ``outputs/OUTCAR`` are hand-written in VASP's file formats, with the smallest
  content pymatgen/emmet need.  Their energy, forces and stress are CHGNet 0.4.2 values (a universal potential
  trained on Materials Project PBE+U data) for this structure, not DFT results; the magnetic moments are
  illustrative.  ``outputs/custodian.json`` records one convergence-only correction (ALGO Fast -> Normal) so
  the test can check that corrections reach the frame's provenance.

The test checks the path: input set -> atomate2 StaticMaker -> (fake) run -> emmet TaskDoc -> labeled frame,
including units, sign conventions, site order and the +U provenance.

Usage: ``python tests/labeling/data/make_vasp_reference.py``
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

HERE = Path(__file__).parent / "vasp_licoo2_static"


def structure() -> Structure:
    """LiCoO2 (R-3m) primitive cell, 4 atoms, with one O displaced by 0.05 Å (nonzero forces)."""
    s = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2604]]
    ).get_primitive_structure()
    s.translate_sites([3], [0.05, 0.0, 0.0], frac_coords=False)
    return s


def _v(rows) -> str:
    return "\n".join("    <v> " + " ".join(f"{x:16.8f}" for x in row) + " </v>" for row in rows)


def _crystal(s: Structure) -> str:
    return f"""   <crystal>
    <varray name="basis">
{_v(s.lattice.matrix)}
    </varray>
    <i name="volume">{s.volume:16.8f} </i>
    <varray name="rec_basis">
{_v(s.lattice.reciprocal_lattice_crystallographic.matrix)}
    </varray>
   </crystal>
   <varray name="positions">
{_v(s.frac_coords)}
   </varray>"""


def vasprun(s: Structure, incar: dict, kpts, energy: float, forces, stress_kbar, magmoms) -> str:
    symbols = [site.specie.symbol for site in s]
    types = list(dict.fromkeys(symbols))
    potcars = {"Li": "PAW_PBE Li_sv 10Sep2004", "Co": "PAW_PBE Co 06Sep2000", "O": "PAW_PBE O 08Apr2002"}
    valence = {"Li": 3.0, "Co": 9.0, "O": 6.0}
    masses = {"Li": 7.01, "Co": 58.933, "O": 16.0}
    nelect = sum(valence[e] for e in symbols)
    atoms = "\n".join(f"    <rc><c>{e:2s}</c><c>{types.index(e) + 1:4d}</c></rc>" for e in symbols)
    atomtypes = "\n".join(
        f"    <rc><c>{symbols.count(e):4d}</c><c>{e:2s}</c><c>{masses[e]:10.4f}</c><c>{valence[e]:10.4f}</c>"
        f"<c>  {potcars[e]}</c></rc>"
        for e in types
    )

    def fmt(v):
        if isinstance(v, bool):
            return " T " if v else " F "
        if isinstance(v, list | tuple):
            return " ".join(str(x) for x in v)
        return str(v)

    def tag(k, v):
        if isinstance(v, list):
            return f'  <v name="{k}">{fmt(v)}</v>'
        kind = {bool: "logical", int: "int", str: "string"}.get(type(v))
        typed = f' type="{kind}"' if kind else ""
        return f'  <i{typed} name="{k}">{fmt(v)}</i>'

    incar_xml = "\n".join(tag(k, v) for k, v in incar.items())
    ldau = "\n".join(f'   <v name="{k}">{fmt(incar[k])}</v>' for k in ("LDAUL", "LDAUU", "LDAUJ"))
    # two SCF steps converging to the final energy
    scsteps = "\n".join(
        f"""  <scstep>
   <energy>
    <i name="e_fr_energy">{e:16.8f} </i>
    <i name="e_wo_entrp">{e:16.8f} </i>
    <i name="e_0_energy">{e:16.8f} </i>
   </energy>
  </scstep>"""
        for e in (energy + 0.5, energy + 1e-4, energy)
    )
    # a small illustrative band structure at Gamma (eV), half filled per spin
    nbands = int(nelect // 2) + 4
    eig = np.linspace(-8.0, 6.0, nbands)
    occ = (np.arange(nbands) < nelect / 2).astype(float)
    spin_sets = "\n".join(
        f'      <set comment="spin {spin}">\n       <set comment="kpoint 1">\n'
        + "\n".join(f"        <r> {e:10.4f} {o:8.4f} </r>" for e, o in zip(eig, occ, strict=True))
        + "\n       </set>\n      </set>"
        for spin in (1, 2)
    )
    efermi = float(eig[int(nelect // 2) - 1] + 0.1)
    grid = np.linspace(-10.0, 8.0, 10)
    dos_sets = "\n".join(
        f'      <set comment="spin {spin}">\n'
        + "\n".join(f"       <r> {e:10.4f} {1.0:10.4f} {float(i):10.4f} </r>" for i, e in enumerate(grid))
        + "\n      </set>"
        for spin in (1, 2)
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!-- RECORDED REFERENCE FOR PARSING TESTS, NOT A VASP RUN:
     written by tests/labeling/data/make_vasp_reference.py; energy/forces/stress are
     CHGNet 0.4.2 values for this structure, eigenvalues and moments are illustrative. -->
<modeling>
 <generator>
  <i name="program" type="string">vasp </i>
  <i name="version" type="string">6.4.2  </i>
  <i name="subversion" type="string">mlipflow recorded reference </i>
  <i name="platform" type="string">LinuxIFC </i>
  <i name="date" type="string">2026 11 22 </i>
  <i name="time" type="string">08:00:00 </i>
 </generator>
 <incar>
{incar_xml}
 </incar>
 <kpoints>
  <generation param="Gamma">
   <v type="int" name="divisions">{" ".join(f"{k:8d}" for k in kpts)} </v>
   <v name="usershift">      0.00000000      0.00000000      0.00000000 </v>
  </generation>
  <varray name="kpointlist">
    <v>       0.00000000       0.00000000       0.00000000 </v>
  </varray>
  <varray name="weights">
    <v>       1.00000000 </v>
  </varray>
 </kpoints>
 <parameters>
  <separator name="general">
   <i type="string" name="SYSTEM">LiCoO2</i>
  </separator>
  <separator name="electronic">
   <i type="string" name="PREC">accurate</i>
   <i name="ENCUT">{incar["ENCUT"]:16.8f}</i>
   <i name="NELECT">{nelect:16.8f}</i>
   <i type="int" name="NBANDS">{nbands}</i>
   <i type="int" name="ISPIN">{incar["ISPIN"]}</i>
   <i type="int" name="NELM">{incar["NELM"]}</i>
   <i name="EDIFF">{incar["EDIFF"]}</i>
   <i type="int" name="ISMEAR">{incar["ISMEAR"]}</i>
   <i name="SIGMA">{incar["SIGMA"]}</i>
   <i type="string" name="GGA">PE</i>
   <i type="logical" name="LASPH"> T  </i>
   <i type="logical" name="LDAU"> T  </i>
   <i type="int" name="LDAUTYPE">2</i>
{ldau}
   <i type="int" name="LMAXMIX">{incar["LMAXMIX"]}</i>
   <i type="int" name="LORBIT">{incar.get("LORBIT", 0)}</i>
   <i type="logical" name="LSORBIT"> F  </i>
   <i type="logical" name="LHFCALC"> F  </i>
   <i type="string" name="METAGGA">--</i>
   <v name="MAGMOM">{" ".join(str(m) for m in incar["MAGMOM"])}</v>
  </separator>
  <separator name="ionic">
   <i type="int" name="NSW">0</i>
   <i type="int" name="IBRION">-1</i>
   <i type="int" name="ISIF">3</i>
  </separator>
 </parameters>
 <atominfo>
  <atoms>{len(s)}</atoms>
  <types>{len(types)}</types>
  <array name="atoms">
   <dimension dim="1">ion</dimension>
   <field type="string">element</field>
   <field type="int">atomtype</field>
   <set>
{atoms}
   </set>
  </array>
  <array name="atomtypes">
   <dimension dim="1">type</dimension>
   <field type="int">atomspertype</field>
   <field type="string">element</field>
   <field>mass</field>
   <field>valence</field>
   <field type="string">pseudopotential</field>
   <set>
{atomtypes}
   </set>
  </array>
 </atominfo>
 <structure name="initialpos">
{_crystal(s)}
 </structure>
 <calculation>
{scsteps}
  <structure>
{_crystal(s)}
  </structure>
  <varray name="forces">
{_v(forces)}
  </varray>
  <varray name="stress">
{_v(stress_kbar)}
  </varray>
  <energy>
   <i name="e_fr_energy">{energy:16.8f} </i>
   <i name="e_wo_entrp">{energy:16.8f} </i>
   <i name="e_0_energy">{energy:16.8f} </i>
  </energy>
  <eigenvalues>
   <array>
    <dimension dim="1">band</dimension>
    <dimension dim="2">kpoint</dimension>
    <dimension dim="3">spin</dimension>
    <field>eigene</field>
    <field>occ</field>
    <set>
{spin_sets}
    </set>
   </array>
  </eigenvalues>
  <dos>
   <i name="efermi">{efermi:12.8f} </i>
   <total>
    <array>
     <dimension dim="1">gridpoints</dimension>
     <dimension dim="2">spin</dimension>
     <field>energy</field>
     <field>total</field>
     <field>integrated</field>
     <set>
{dos_sets}
     </set>
    </array>
   </total>
  </dos>
 </calculation>
 <structure name="finalpos">
{_crystal(s)}
 </structure>
</modeling>
"""


def outcar(s: Structure, energy: float, magmoms, forces) -> str:
    rows = "\n".join(
        f"{i + 1:4d}        0.000    0.000    {m:6.3f}    {m:6.3f}" for i, m in enumerate(magmoms)
    )
    pos_forces = "\n".join(
        " " + " ".join(f"{x:12.5f}" for x in site.coords) + "    " + " ".join(f"{f:13.6f}" for f in force)
        for site, force in zip(s, forces, strict=True)
    )
    return f""" vasp.6.4.2 (mlipflow recorded reference: NOT A VASP RUN, see tests/labeling/data/README.md)
 executed on             LinuxIFC date 2026.11.22  08:00:00
 running on    1 total cores

   k-points           NKPTS =      1   k-points in BZ     NKDIM =      1   number of bands    NBANDS=     16
   total plane-waves  NPLWV =  13824
   NELECT =      24.0000    total number of electrons
   ISPIN  =      2    spin polarized calculation?
   IBRION =     -1    ionic relax: 0-MD 1-quasi-New 2-CG
   LNONCOLLINEAR =      F non collinear calculations

 POSITION                                       TOTAL-FORCE (eV/Angst)
 -----------------------------------------------------------------------------------
{pos_forces}
 -----------------------------------------------------------------------------------

  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)
  ---------------------------------------------------
  free  energy   TOTEN  =     {energy:14.8f} eV

  energy  without entropy=     {energy:14.8f}  energy(sigma->0) =     {energy:14.8f}

 E-fermi :   0.1000     XC(G=0):  -9.0000     alpha+bet : -9.0000

 magnetization (x)

# of ion       s       p       d       tot
------------------------------------------
{rows}
--------------------------------------------------
tot          0.000    0.000    {sum(magmoms):6.3f}    {sum(magmoms):6.3f}

 General timing and accounting informations for this job:
 ========================================================

                  Total CPU time used (sec):        1.000
                            User time (sec):        1.000
                          System time (sec):        0.000
                         Elapsed time (sec):        1.000

                   Maximum memory used (kb):       100000.
                   Average memory used (kb):          N/A

                          Minor page faults:            0
                          Major page faults:            0
                 Voluntary context switches:            0
"""


def main() -> None:
    from ase import units
    from chgnet.model import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    from mlipflow.labeling.vasp import battery_interface_set_generator

    s = structure()
    shutil.rmtree(HERE, ignore_errors=True)
    (HERE / "inputs").mkdir(parents=True)
    (HERE / "outputs").mkdir(parents=True)
    from atomate2.vasp.files import write_vasp_input_set

    generator = battery_interface_set_generator()
    write_vasp_input_set(s, generator, directory=HERE / "inputs", potcar_spec=True)  # the labeler's own path
    vis = generator.get_input_set(s, potcar_spec=True)
    written = Structure.from_file(HERE / "inputs" / "POSCAR")  # the order VASP sees
    atoms = AseAtomsAdaptor.get_atoms(written)
    atoms.calc = CHGNetCalculator(use_device="cpu")
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    stress_kbar = (
        -atoms.get_stress(voigt=False) / units.GPa * 10.0
    )  # eV/Å3 (tensile +) -> kBar (compressive +)
    magmoms = [0.0 if e != "Co" else 0.05 for e in (site.specie.symbol for site in written)]
    incar = dict(vis.incar)
    kpts = vis.kpoints.kpts[0]
    (HERE / "outputs" / "vasprun.xml").write_text(
        vasprun(written, incar, kpts, energy, forces, stress_kbar, magmoms)
    )
    (HERE / "outputs" / "OUTCAR").write_text(outcar(written, energy, magmoms, forces))
    shutil.copy(HERE / "inputs" / "POSCAR", HERE / "outputs" / "CONTCAR")
    custodian_log = [
        {
            "job": {"@module": "custodian.vasp.jobs", "@class": "VaspJob"},
            "corrections": [
                {
                    "errors": ["Unconverged"],
                    "actions": [{"dict": "INCAR", "action": {"_set": {"ALGO": "Normal"}}}],
                    "handler": {
                        "@module": "mlipflow.labeling.consistency",
                        "@class": "LabelConsistencyGuard",
                        "handler": {
                            "@module": "custodian.vasp.handlers",
                            "@class": "UnconvergedErrorHandler",
                        },
                        "code": "vasp",
                    },
                }
            ],
            "handler": None,
            "validator": None,
            "max_errors": False,
            "max_errors_per_job": False,
            "max_errors_per_handler": False,
            "nonzero_return_code": False,
        }
    ]
    (HERE / "outputs" / "custodian.json").write_text(json.dumps(custodian_log, indent=1))
    print(f"written {HERE}: E = {energy:.6f} eV")


if __name__ == "__main__":
    main()
