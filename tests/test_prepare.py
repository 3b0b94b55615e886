"""From the scanner: a phantom DICOM study (skull, four grids and poses, a localizer, an Enhanced MR T1ce, a compressed
FLAIR) through `prepare`, checked against the phantom's exact truth; back to the source grids and to DICOM SEG; and
each bad study refused with its reason."""
import json, shutil
from pathlib import Path
import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')
pytest.importorskip('highdicom'); pytest.importorskip('SimpleITK')
import nibabel as nib
from scipy.ndimage import map_coordinates
from mriseg.labels import MrisegError
from mriseg.dicom import scan_study, assign_roles, series_volume, stack_frames, lps_to_ras, write_dicom_seg, read_dicom_seg, role_table
from mriseg.scanner import make_phantom_study, write_dicom_series, PROTOCOL
from mriseg.prepare import prepare, native_mask, write_native, check_native, prepare_record
from mriseg.io import save_nifti

RLE, J2K = '1.2.840.10008.1.2.5', '1.2.840.10008.1.2.4.90'
SHAPE, SPACING = (120, 120, 78), 2.

@pytest.fixture(scope='module')
def study(tmp_path_factory):
    "One phantom study: poses up to 15 degrees and 20 mm between series, T1ce as Enhanced MR, FLAIR compressed (RLE)."
    d = tmp_path_factory.mktemp('scanner')
    s = make_phantom_study(d, seed=3, shape=SHAPE, pose_deg=15, pose_mm=20, enhanced=('t1ce',), transfer={'flair': RLE})
    (s.root/'notes.txt').write_text('not an image')
    (s.root/'002_T1_AX_SE'/'.DS_Store').write_bytes(b'\0' * 10)
    return s

@pytest.fixture(scope='module')
def prepared(study, tmp_path_factory):
    out = tmp_path_factory.mktemp('prepared')
    return prepare(study.root, out, spacing=SPACING, verbose=False)

def truth(study):
    rec = json.loads((study.truth/'truth.json').read_text())
    return rec, np.array(rec['head_affine']), {r: np.array(v['pose']) for r, v in rec['series'].items()}

def sample(vol, affine, points, order=0):
    "`vol` (on `affine`) at RAS `points` [4,N]."
    return map_coordinates(vol, (np.linalg.inv(affine) @ points)[:3], order=order, mode='constant', cval=0)

def dice(a, b): return 2*(a & b).sum()/(a.sum() + b.sum())

def test_roles_and_skipped_files(study, prepared):
    roles = {r: v['description'] for r, v in prepared.record['roles'].items()}
    assert roles == {a.role: a.description for a in PROTOCOL}
    skipped = dict(prepared.record['skipped'])
    assert skipped == {'notes.txt': 'not DICOM'}  # hidden files are not looked at; the localizer is a series, not a file
    s = scan_study(study.root)
    assert [x.description for x in s.series][0] == 'localizer' and assign_roles(s).series[0].role is None

def test_registration_within_a_millimetre(study, prepared):
    rec, H, P = truth(study)
    b = np.asarray(nib.load(study.truth/'brain.nii.gz').dataobj) > 0
    ijk = np.argwhere(b)[::5]
    x = H @ np.c_[ijk, np.ones(len(ijk))].T  # the brain, in head mm
    for role, s in prepared.record['roles'].items():
        found = np.array(s['to_source']) @ P['t1ce'] @ x  # prepared (T1ce) space -> the series' scanner space
        err = np.linalg.norm(found[:3] - (P[role] @ x)[:3], axis=0).mean()
        assert err <= 1., f'{role}: mean displacement {err:.2f} mm over the brain'
        if role != 't1ce':  # the series really moved: without registration the error would be large
            assert np.linalg.norm((P['t1ce'] @ x)[:3] - (P[role] @ x)[:3], axis=0).mean() > 5

def test_brain_mask_against_the_truth(study, prepared):
    rec, H, P = truth(study)
    b = np.asarray(nib.load(study.truth/'brain.nii.gz').dataobj).astype(np.float32)
    G, shp = np.array(prepared.record['grid']['affine']), prepared.record['grid']['shape']
    ii = np.indices(shp).reshape(3, -1)
    pts = np.linalg.inv(P['t1ce']) @ G @ np.r_[ii, np.ones((1, ii.shape[1]))]
    true = sample(b, H, pts, order=1).reshape(shp) > .5
    assert dice(true, prepared.brain) >= .95
    written = np.asarray(nib.load(prepared.path/f'{prepared.ref.case_id}_brainmask.nii.gz').dataobj) > 0
    assert (written == prepared.brain).all()
    img = nib.load(prepared.ref.images[0][0])
    assert img.shape == tuple(shp) and np.allclose(img.affine, G) and np.allclose(np.linalg.norm(G[:3, :3], axis=0), SPACING)  # aligned with the template, in the T1ce's scanner mm

def true_labels_on_case(study, prepared, tmp_path):
    "The phantom's labels resampled onto the prepared case's grid, saved as a prediction would be."
    rec, H, P = truth(study)
    lab = np.asarray(nib.load(study.truth/'labels.nii.gz').dataobj)
    G, shp = np.array(prepared.record['grid']['affine']), prepared.record['grid']['shape']
    ii = np.indices(shp).reshape(3, -1)
    on_case = sample(lab, H, np.linalg.inv(P['t1ce']) @ G @ np.r_[ii, np.ones((1, ii.shape[1]))]).reshape(shp).astype(np.uint8)
    save_nifti(on_case, G, tmp_path/'mask.nii.gz')
    return tmp_path/'mask.nii.gz'

def test_native_masks_lie_on_the_source_grids(study, prepared, tmp_path):
    rec, H, P = truth(study)
    lab = np.asarray(nib.load(study.truth/'labels.nii.gz').dataobj)
    paths = write_native(true_labels_on_case(study, prepared, tmp_path), prepared.ref, tmp_path/'out', native=True)
    s = assign_roles(scan_study(study.root))
    for role, p in zip(('t1ce', 'flair'), paths):
        img = nib.load(p)
        series_aff = lps_to_ras(stack_frames(s[role])[1])  # from the DICOM tags alone
        assert np.array_equal(img.affine, series_aff.astype(img.affine.dtype)) or np.allclose(img.affine, series_aff, atol=1e-5)
        assert np.allclose(series_aff, rec['series'][role]['affine_ras'], atol=1e-4) and list(img.shape) == rec['series'][role]['shape']
        # the mask lands on the tumour as the scanner saw it (not flipped, not shifted)
        ii = np.indices(img.shape).reshape(3, -1)
        seen = sample(lab, H, np.linalg.inv(P[role]) @ series_aff @ np.r_[ii, np.ones((1, ii.shape[1]))]).reshape(img.shape)
        assert dice(np.asarray(img.dataobj) > 0, seen > 0) > .8, role

def seg_positions(path):
    ds = pydicom.dcmread(path)
    return ds, [tuple(np.round(np.array(f.PlanePositionSequence[0].ImagePositionPatient, float), 3))
                for f in ds.PerFrameFunctionalGroupsSequence]

def test_dicom_seg_round_trip_on_an_enhanced_source(study, prepared, tmp_path):
    "The T1ce is one multi-frame Enhanced MR object: the SEG's frames reference its frames at their positions."
    paths = write_native(true_labels_on_case(study, prepared, tmp_path), prepared.ref, tmp_path/'out', native=False, dicom_seg=True)
    r = prepared.record['roles']['t1ce']
    files = [str(Path(prepared.record['source'])/f) for f in r['files']]
    m, _ = native_mask(np.asarray(nib.load(tmp_path/'mask.nii.gz').dataobj), nib.load(tmp_path/'mask.nii.gz').affine,
                       prepared.record, 't1ce')
    assert m.any() and set(np.unique(m)) <= {0, 1, 2, 4}
    back = read_dicom_seg(paths[0], files, r['frames'], tuple(r['shape']))
    assert np.array_equal(back, m)
    ds, pos = seg_positions(paths[0])
    src = assign_roles(scan_study(study.root))['t1ce']
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.key
    assert set(pos) == {tuple(np.round(f.position, 3)) for f in src.frames}
    assert ds.NumberOfFrames == 3*len(src.frames)  # one frame per slice per segment (empty ones kept)
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ['Necrotic tumour core', 'Peritumoural oedema', 'Enhancing tumour']

def test_dicom_seg_round_trip_on_a_classic_source(study, tmp_path):
    "A series of single-frame files: each SEG frame sits at, and references, the slice it segments."
    s = assign_roles(scan_study(study.root))['t1']
    fr, aff = stack_frames(s)
    vol, _ = series_volume(s)
    rng = np.random.default_rng(0)
    m = np.zeros(vol.shape, np.uint8)
    m[40:80, 50:90, 10:14] = 2; m[50:60, 60:70, 11:13] = 4; m[55:58, 62:65, 12] = 1; m[5:9, 5:9, 20] = rng.choice([0, 1], (4, 4))
    f = write_dicom_seg(m, [str(x.file) for x in fr], [x.index for x in fr], tmp_path/'seg.dcm')
    assert np.array_equal(read_dicom_seg(f, [str(x.file) for x in fr], [x.index for x in fr], vol.shape), m)
    ds, pos = seg_positions(f)
    uid_at = {tuple(np.round(x.position, 3)): x.sop_uid for x in fr}
    for item, p in zip(ds.PerFrameFunctionalGroupsSequence, pos):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert uid_at[p] == ref
    with pytest.raises(MrisegError, match='slices'): write_dicom_seg(m[:, :, :-1], [str(x.file) for x in fr], [x.index for x in fr], tmp_path/'bad.dcm')
    assert not (tmp_path/'bad.dcm').exists()

def test_compressed_and_enhanced_read_as_uncompressed(study, tmp_path):
    "The same volume written uncompressed, RLE, JPEG 2000 lossless and as one Enhanced MR object reads back the same."
    a = PROTOCOL[0]
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 3000, (64, 48, 12)).astype(np.float32)
    c, n = np.cos(np.radians(12)), np.sin(np.radians(12))
    aff = np.eye(4); aff[:3, :3] = np.array([[1, 0, 0], [0, c, -n], [0, n, c]]) @ np.diag([-1.8, -1.8, 5.5]); aff[:3, 3] = (100, 90, -60)
    kw = dict(pid='P', study_uid='1.2.3', for_uid='1.2.4', a=a, number=2)
    got = {}
    for name, extra in dict(plain={}, rle=dict(transfer=RLE), j2k=dict(transfer=J2K), enhanced=dict(enhanced=True)).items():
        write_dicom_series(tmp_path/name, vol, aff, **kw, **extra)
        s = scan_study(tmp_path/name).series
        assert len(s) == 1
        got[name] = series_volume(s[0])
    for name, (v, A) in got.items():
        assert np.array_equal(v, vol), name
        assert np.allclose(A, aff, atol=1e-4), name

def copy_study(study, tmp_path, keep=None):
    d = tmp_path/'study'
    shutil.copytree(study.root, d, ignore=None if keep is None else
                    (lambda src, names: [n for n in names if Path(src) == study.root and n not in keep]))
    return d

def rewrite(folder, **tags):
    for f in sorted(Path(folder).iterdir()):
        ds = pydicom.dcmread(f)
        for k, v in tags.items(): setattr(ds, k, v)
        ds.save_as(f)

def test_mixed_patients_refused(study, tmp_path):
    d = copy_study(study, tmp_path)
    shutil.copytree(d/'003_T2_TSE_AX', d/'other'/'t2')
    rewrite(d/'other'/'t2', PatientID='SOMEONE-ELSE', SeriesInstanceUID=pydicom.uid.generate_uid())
    with pytest.raises(MrisegError, match=r"holds the scans of 2 patients.*SOMEONE-ELSE"): scan_study(d)

def test_missing_flair_stops_with_the_table(study, tmp_path):
    d = copy_study(study, tmp_path, keep={'001_localizer', '002_T1_AX_SE', '003_T2_TSE_AX', '005_T1_MPRAGE_SAG_POST_GAD'})
    with pytest.raises(MrisegError) as e: assign_roles(scan_study(d))
    msg = str(e.value)
    assert 'no series for flair' in msg and '--roles' in msg and 'T1 MPRAGE SAG POST GAD' in msg and 'localizer' in msg

def test_two_t1ce_candidates_stop_then_roles_decide(study, tmp_path):
    d = copy_study(study, tmp_path)
    shutil.copytree(d/'005_T1_MPRAGE_SAG_POST_GAD', d/'006_again')
    rewrite(d/'006_again', SeriesInstanceUID=pydicom.uid.generate_uid(), SeriesNumber=6, SeriesDescription='T1 MPRAGE AX POST')
    with pytest.raises(MrisegError, match=r"2 series could be t1ce \(series 5 .*series 6"): assign_roles(scan_study(d))
    s = assign_roles(scan_study(d), {'t1ce': '6'})
    assert s['t1ce'].number == 6 and [x.role for x in s.series].count('t1ce') == 1
    (tmp_path/'roles.txt').write_text('# which series\nt1ce: T1 MPRAGE SAG POST GAD\n')
    from mriseg.dicom import read_roles_file
    assert assign_roles(scan_study(d), read_roles_file(tmp_path/'roles.txt'))['t1ce'].number == 5
    with pytest.raises(MrisegError, match="names 0 series"): assign_roles(scan_study(d), {'t1ce': '99'})

def test_gap_refused(study, tmp_path):
    d = copy_study(study, tmp_path)
    (d/'002_T1_AX_SE'/'IM0010').unlink()
    s = assign_roles(scan_study(d))
    with pytest.raises(MrisegError, match=r"series 2 'T1 AX SE': slices 9 and 10 .* 11.00 mm apart where the others are 5.50 mm: a gap"):
        series_volume(s['t1'])
    with pytest.raises(MrisegError, match='a gap'): prepare(d, tmp_path/'out', spacing=SPACING, verbose=False)
    assert not (tmp_path/'out').exists() or not any((tmp_path/'out').iterdir())

def test_localizer_only_refused(study, tmp_path):
    d = copy_study(study, tmp_path, keep={'001_localizer'})
    with pytest.raises(MrisegError) as e: assign_roles(scan_study(d))
    assert 'no series for t1, t1ce, t2, flair' in str(e.value) and 'a localizer' in str(e.value)

def test_not_a_study(tmp_path):
    (tmp_path/'a.txt').write_text('hello')
    with pytest.raises(MrisegError, match=r'holds no MR images \(1 files: 1 not DICOM\)'): scan_study(tmp_path)
    with pytest.raises(MrisegError, match='does not exist'): scan_study(tmp_path/'nope')

def test_raw_nifti_series(tmp_path):
    s = make_phantom_study(tmp_path, seed=4, form='nifti', shape=(96, 96, 64))
    rec = json.loads((s.truth/'truth.json').read_text())
    st = assign_roles(scan_study(s.root))
    assert {r: st[r].description for r in rec['series']} == {r: f"{v['number']:02d}_{v['description'].replace(' ', '_')}" for r, v in rec['series'].items()}
    assert 'file name' in st['t1ce'].why and 'x' in role_table(st).splitlines()[1]
    for r, v in rec['series'].items():
        vol, aff = series_volume(st[r])
        assert np.allclose(lps_to_ras(aff), v['affine_ras'], atol=1e-4) and list(vol.shape) == v['shape']

def test_never_overwrites_a_case(study, prepared):
    with pytest.raises(MrisegError, match='already exists'): prepare(study.root, prepared.path.parent, spacing=SPACING, verbose=False)
    with pytest.raises(MrisegError, match='spacing'): prepare(study.root, prepared.path.parent, spacing=.1, verbose=False)
    assert prepare_record(prepared.path)['case'] == prepared.ref.case_id

def test_native_refused_for_a_case_prepare_did_not_make(tmp_path):
    from mriseg.datasets import write_case
    ref = write_case(tmp_path, 'BraTS2021_00001', np.ones((4, 8, 8, 8)), None)
    with pytest.raises(MrisegError, match='has no prepare.json'): check_native(ref, native=True, dicom_seg=False)
    assert check_native(ref, native=False, dicom_seg=False) is None

def test_series_coverage_of_the_brain(study, prepared):
    "prepare.json says how much of the brain each series saw: checked against the series' true grids."
    rec, H, P = truth(study)
    G, shp = np.array(prepared.record['grid']['affine']), prepared.record['grid']['shape']
    ijk = np.argwhere(prepared.brain)
    x = np.linalg.inv(P['t1ce']) @ G @ np.c_[ijk, np.ones(len(ijk))].T  # the brain, in head mm
    got = prepared.record['skull_strip']['coverage']
    assert got['t1ce'] == 1.  # the mask is cut to the T1ce's field of view
    for role, s in rec['series'].items():
        v = np.linalg.inv(np.array(s['affine_ras'])) @ P[role] @ x  # where the series saw each brain voxel
        inside = np.all((v[:3] > -.5) & (v[:3] < np.array(s['shape'])[:, None] - .5), axis=0).mean()
        assert abs(got[role] - inside) < .01, (role, got[role], inside)
    assert min(got.values()) < .99  # this study's thick axial series miss part of the brain: the check has something to find
