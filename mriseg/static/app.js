// The page of `mriseg app`: NiiVue views of a case, segmentation with progress, corrections, measurements, reports.
// Everything it loads comes from the server that served it; the API it calls is documented in the app chapter.
const TOKEN = new URLSearchParams(location.search).get('token');
const withToken = (url) => TOKEN ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(TOKEN)}` : url;
const ROLES = ['t1', 't1ce', 't2', 'flair'];
const COLOURS = {WT: [43, 209, 75], TC: [255, 210, 31], ET: [242, 41, 58]};  // the library's region colours
const OTHER = [[31, 155, 255], [255, 140, 26], [180, 92, 255]];
const $ = (id) => document.getElementById(id);
const state = {case: null, seq: 't1ce', hidden: new Set(), opacity: 0.5, outline: false, shownMask: null, polling: null};
let NV = null, views = null;

function say(text, error = false) {
  const m = $('message');
  m.textContent = text || '';
  m.className = error ? 'error' : '';
}

async function api(path, opts = {}) {
  const r = await fetch(withToken(`api/${path}`), opts);
  let body = {};
  try { body = await r.json(); } catch (e) { body = {}; }
  if (!r.ok) throw new Error(body.detail || `${r.status} ${r.statusText}`);
  return body;
}

// ---- the viewer ----
async function loadViewer() {
  try { NV = await import('./niivue.js'); }
  catch (e) {
    say('The viewer (NiiVue) is not in this installation: install the mriseg wheel, or run `make niivue` in a ' +
        'checkout. The API works without it.', true);
    return false;
  }
  const make = async (id, sliceType) => {
    const nv = new NV.Niivue({backColor: [0, 0, 0, 1], show3Dcrosshair: true, isResizeCanvas: true,
                              dragAndDropEnabled: false, logLevel: 'error'});
    await nv.attachTo(id);
    nv.setSliceType(sliceType);
    return nv;
  };
  views = {main: await make('gl-main', NV.SLICE_TYPE.MULTIPLANAR), expert: await make('gl-expert', NV.SLICE_TYPE.AXIAL)};
  views.main.opts.multiplanarShowRender = NV.SHOW_RENDER.ALWAYS;
  for (const r of ROLES) views[r] = await make(`gl-${r}`, NV.SLICE_TYPE.AXIAL);
  views.main.onLocationChange = (loc) => { $('status').dataset.location = loc.string || ''; };
  window.mrisegViews = views;  // for the browser tests and the curious
  return true;
}

const caseUrl = (part) => withToken(`api/cases/${state.case.id}/${part}`);

function labelColormap(forDrawing = false) {
  // a colour per label value the masks hold: each region paints its own label (state.case.paint: region -> value)
  const paint = state.case.paint, n = Math.max(...Object.values(paint)) + 1;
  const cm = {R: Array(n).fill(0), G: Array(n).fill(0), B: Array(n).fill(0), A: Array(n).fill(0),
              I: [...Array(n).keys()], labels: Array(n).fill('')};
  Object.entries(paint).forEach(([region, v], i) => {
    const [r, g, b] = COLOURS[region] || OTHER[i % OTHER.length];
    cm.R[v] = r; cm.G[v] = g; cm.B[v] = b;
    cm.A[v] = forDrawing || !state.hidden.has(region) ? 255 : 0;
    cm.labels[v] = region;
  });
  return cm;
}

function overlayViews() {
  return ['main', ...ROLES].map((k) => views[k]);
}

async function showImages() {
  const c = state.case;
  await views.main.loadVolumes([{url: caseUrl(`image/${state.seq}.nii.gz`), name: `${state.seq}.nii.gz`}]);
  for (const r of ROLES) await views[r].loadVolumes([{url: caseUrl(`image/${r}.nii.gz`), name: `${r}.nii.gz`}]);
  $('gl-expert').hidden = !($('show-expert').checked && c.label);
  if (c.label) {
    await views.expert.loadVolumes([{url: caseUrl('image/t1ce.nii.gz'), name: 't1ce.nii.gz'},
                                    {url: caseUrl('image/seg.nii.gz'), name: 'seg.nii.gz'}]);
    styleMask(views.expert);
  }
  const all = ['main', 'expert', ...ROLES].map((k) => views[k]);  // a click in any view moves every crosshair
  for (const v of all) v.broadcastTo(all.filter((o) => o !== v), {'2d': true, '3d': true});
  state.shownMask = null;
}

function styleMask(nv) {
  if (nv.volumes.length < 2) return;
  nv.volumes[1].setColormapLabel(labelColormap());
  nv.volumes[1].opacity = state.opacity;
  nv.setAtlasOutline(state.outline ? 1 : 0);
  nv.updateGLVolume();
}

async function showMask(part, only = null) {
  // the mask as a label overlay on every view (or on `only`), loaded side by side
  if (!views) return;
  await Promise.all((only || overlayViews()).map(async (nv) => {
    while (nv.volumes.length > 1) nv.removeVolumeByIndex(1);
    await nv.addVolumeFromUrl({url: caseUrl(part), name: 'mask.nii.gz'});
    styleMask(nv);
  }));
  state.shownMask = part;
}

function restyle() {
  if (!views) return;
  for (const nv of [...overlayViews(), views.expert]) styleMask(nv);
}

// ---- cases ----
async function refreshCases() {
  const cases = await api('cases');
  const ul = $('cases');
  ul.replaceChildren();
  for (const c of cases) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.textContent = `${c.name} (${c.status})`;
    b.dataset.id = c.id;
    b.onclick = () => openCase(c.id).catch((e) => say(e.message, true));
    li.append(b);
    ul.append(li);
  }
  for (const id of ['before', 'after']) {
    const s = $(id), keep = s.value;
    s.replaceChildren(...cases.filter((c) => c.versions.length).map((c) => new Option(c.name, c.id)));
    if (keep) s.value = keep;
  }
  return cases;
}

async function openCase(id) {
  state.case = await api(`cases/${id}`);
  $('case-name').textContent = state.case.name;
  $('segment').disabled = false;
  $('show-expert').disabled = !state.case.label;
  $('edit').disabled = !state.case.versions.length;
  regionToggles();
  pens();
  if (views) await showImages();
  await follow();
}

function regionToggles() {
  const box = $('region-toggles');
  box.replaceChildren();
  for (const region of Object.keys(state.case.paint)) {
    const l = document.createElement('label');
    const i = document.createElement('input');
    i.type = 'checkbox'; i.checked = !state.hidden.has(region); i.dataset.region = region;
    i.onchange = () => { i.checked ? state.hidden.delete(region) : state.hidden.add(region); restyle(); };
    l.append(i, region);
    box.append(l);
  }
}

function pens() {
  const box = $('pens');
  box.replaceChildren();
  for (const [region, v] of Object.entries(state.case.paint)) {
    const b = document.createElement('button');
    b.className = 'pen'; b.dataset.pen = v; b.textContent = `pen ${region}`;
    box.append(b);
  }
  document.querySelectorAll('.pen').forEach((b) => {
    b.onclick = () => {
      views.main.setPenValue(Number(b.dataset.pen), $('fill').checked);
      document.querySelectorAll('.pen').forEach((x) => x.classList.toggle('active', x === b));
    };
  });
}

// ---- segmenting ----
async function segment() {
  let first = null;
  if (views && views.main.volumes.length) {
    const mm = views.main.frac2mm(views.main.scene.crosshairPos);
    first = [mm[0], mm[1], mm[2]].map(Number);
  }
  state.case = await api(`cases/${state.case.id}/segment`, {
    method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({first})});
  await follow();
}

async function follow() {
  clearTimeout(state.polling);
  const c = state.case = await api(`cases/${state.case.id}`);
  $('progress').value = c.progress || 0;
  $('status').textContent = c.status + (c.error ? `: ${c.error}` : '') +
    (c.status === 'done' && c.seconds ? ` in ${c.seconds} s` : '');
  if (c.status === 'segmenting') {
    if (c.preview && state.shownMask !== 'preview.nii.gz') await showMask('preview.nii.gz', [views.main]);
    state.polling = setTimeout(() => follow().catch((e) => say(e.message, true)), 250);
    return;
  }
  if (c.versions.length) {
    const last = c.versions[c.versions.length - 1].version;
    const part = `mask.nii.gz?version=${last}`;
    if (state.shownMask !== part) await showMask(part);
    $('edit').disabled = false;
    await showMeasurements();
  }
  await refreshCases();
}

// ---- measurements, downloads, comparison ----
function table(rows, head) {
  const t = document.createElement('table');
  const tr = (cells, tag) => { const r = document.createElement('tr');
    for (const c of cells) { const d = document.createElement(tag); d.textContent = c; r.append(d); } return r; };
  t.append(tr(head, 'th'), ...rows.map((r) => tr(r, 'td')));
  return t;
}

async function showMeasurements() {
  const m = await api(`cases/${state.case.id}/measurements`);
  const box = $('measurements');
  const h = document.createElement('h3');
  h.textContent = `Measurements (mask version ${m.version}, ${m.made_by === 'model' ? 'the model\'s' : 'corrected'})`;
  const regions = table(Object.entries(m.regions).map(([k, r]) => [k, r.ml.toFixed(2), r.lesions]),
                        ['region', 'volume (mL)', 'lesions']);
  regions.id = 'region-table';
  const enh = m.lesions.filter((l) => 'product_mm2' in l).slice(0, 10);
  const lesions = table(enh.map((l) => [`${l.region}${l.index}`, l.ml.toFixed(2), l.slice, l.diameter_mm,
                                        l.perpendicular_mm, l.product_mm2, l.measurable ? 'yes' : 'no']),
                        ['lesion', 'mL', 'slice', 'diameter mm', 'perpendicular mm', 'product mm²', 'measurable']);
  const spd = document.createElement('p');
  spd.id = 'spd';
  spd.textContent = `RANO sum of products: ${m.spd_mm2} mm² (${m.targets} target lesion(s); measurable when both ` +
                    `diameters are at least ${m.rano.min_diameter_mm} mm)`;
  const key = document.createElement('img');
  key.alt = 'key slice with the RANO diameters';
  key.src = caseUrl(`keyslice.png?version=${m.version}`);
  key.className = 'key';
  box.replaceChildren(h, regions, spd, lesions, key);
  const d = $('downloads');
  d.replaceChildren();
  for (const [label, part] of [['mask (NIfTI)', `mask.nii.gz?version=${m.version}`],
                               ['measurements (CSV)', `measurements.csv?version=${m.version}`],
                               ['measurements (JSON)', `measurements?version=${m.version}`],
                               ['report (PDF)', `report.pdf?version=${m.version}`],
                               ...(state.case.source === 'dicom' ? [['DICOM SEG', `seg.dcm?version=${m.version}`]] : [])]) {
    const a = document.createElement('a');
    a.href = caseUrl(part); a.textContent = label; a.download = ''; a.className = 'download';
    d.append(a);
  }
}

async function compareCases() {
  const c = await api(`compare?before=${$('before').value}&after=${$('after').value}`);
  const rows = Object.entries(c.regions).map(([k, r]) => [k, r.before_ml.toFixed(2), r.after_ml.toFixed(2),
    r.change === null ? '–' : `${(100 * r.change).toFixed(0)} %`]);
  rows.push(['sum of products (mm²)', c.spd_before_mm2, c.spd_after_mm2,
             c.spd_change === null ? '–' : `${(100 * c.spd_change).toFixed(0)} %`]);
  const advice = document.createElement('p');
  advice.textContent = `${c.advice}. ${c.note}.`;
  $('comparison').replaceChildren(table(rows, ['', 'before', 'after', 'change']), advice);
}

// ---- corrections ----
async function toggleEdit() {
  const on = $('edit').checked, nv = views.main;
  $('save').disabled = !on;
  if (on) {
    const last = state.case.versions[state.case.versions.length - 1].version;
    await nv.loadDrawingFromUrl(caseUrl(`mask.nii.gz?version=${last}`));
    nv.setDrawColormap(labelColormap(true));
    nv.setDrawOpacity(0.6);
    nv.setDrawingEnabled(true);
    nv.setPenValue(Number(Object.values(state.case.paint).slice(-1)[0]), $('fill').checked);
    if (nv.volumes.length > 1) { nv.volumes[1].opacity = 0; nv.updateGLVolume(); }
  } else {
    nv.setDrawingEnabled(false);
    nv.closeDrawing();
    restyle();
  }
}

async function saveEdit() {
  const bytes = await views.main.saveImage({filename: '', isSaveDrawing: true});
  state.case = await api(`cases/${state.case.id}/mask`, {method: 'PUT', body: bytes,
                                                         headers: {'content-type': 'application/octet-stream'}});
  $('edit').checked = false;
  await toggleEdit();
  say(`saved as mask version ${state.case.versions.length - 1}`);
  await follow();
}

// ---- opening ----
async function upload(ev) {
  ev.preventDefault();
  const form = new FormData($('upload-form'));
  for (const [k, v] of [...form.entries()]) if (v instanceof File && !v.size) form.delete(k);
  say('uploading…');
  const c = await api('cases', {method: 'POST', body: form});
  say(`opened ${c.name}`);
  await refreshCases();
  await openCase(c.id);
}

// ---- a DICOM study: the roles proposed, confirmed, then prepared into a case ----
async function showStudy(st) {
  const box = $('study');
  box.replaceChildren();
  const h = document.createElement('h3'); h.textContent = `Study ${st.name}`;
  const pre = document.createElement('pre'); pre.id = 'study-table';
  pre.textContent = [st.header, ...st.series.map((s) => s.line)].join('\n');
  box.append(h, pre);
  if (st.skipped.length) {
    const p = document.createElement('p');
    p.textContent = `skipped ${st.skipped.length} file(s): ` + st.skipped.slice(0, 5).map(([f, w]) => `${f} (${w})`).join('; ');
    box.append(p);
  }
  if (st.problem) { const p = document.createElement('p'); p.className = 'error'; p.textContent = st.problem; box.append(p); }
  const pick = document.createElement('div'); pick.id = 'study-roles';
  for (const role of ROLES) {
    const l = document.createElement('label'); l.textContent = `${role} `;
    const s = document.createElement('select'); s.dataset.role = role;
    s.append(new Option('(none)', ''), ...st.series.map((x) => new Option(`${x.number ?? ''} ${x.description}`, x.key)));
    s.value = st.roles[role] || '';
    const why = document.createElement('small'); why.className = 'why';  // why the chosen series has the role
    const explain = () => { const x = st.series.find((y) => y.key === s.value);
      why.textContent = x ? (x.role === role ? x.why : 'chosen by hand') : ''; };
    s.onchange = explain; explain();
    l.append(s, why); pick.append(l);
  }
  const go = document.createElement('button'); go.id = 'study-prepare'; go.textContent = 'Prepare';
  const status = document.createElement('span'); status.id = 'study-status';
  go.onclick = () => prepareStudy(st.id).catch((e) => say(e.message, true));
  box.append(pick, go, status);
}

async function prepareStudy(id) {
  const roles = {};
  document.querySelectorAll('#study-roles select').forEach((s) => { roles[s.dataset.role] = s.value || null; });
  let st = await api(`studies/${id}/prepare`, {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({roles})});
  $('study-prepare').disabled = true;
  while (st.status === 'preparing') {
    $('study-status').textContent = ` preparing… ${Math.round((Date.now() / 1000 - st.started))} s`;
    await new Promise((r) => setTimeout(r, 500));
    st = await api(`studies/${id}`);
  }
  $('study-prepare').disabled = false;
  if (st.status !== 'done') throw new Error(st.error || `preparing failed (${st.status})`);
  const secs = Object.values(st.seconds || {}).reduce((a, b) => a + b, 0);
  $('study-status').textContent = ` prepared in ${secs.toFixed(0)} s`;
  say(`prepared ${st.name}; segment it with the Segment button`);
  await refreshCases();
  await openCase(st.case_id);
}

async function uploadStudy(ev) {
  ev.preventDefault();
  const form = new FormData($('study-form'));
  const f = form.get('study');
  if (!(f instanceof File) || !f.size) throw new Error('study: choose a zip file of the study first.');
  say('reading the study…');
  await showStudy(await api('studies', {method: 'POST', body: form}));
  say('check the role of each series, then Prepare');
}

async function dataCases() {
  const d = await api('data');
  const box = $('data-cases');
  box.replaceChildren();
  if (!d.folder) return;
  const h = document.createElement('h3'); h.textContent = `From ${d.folder}`; box.append(h);
  for (const c of d.cases) {
    const b = document.createElement('button');
    b.textContent = c.case_id + (c.labelled ? ' (mask)' : '');
    b.onclick = async () => {
      try { const r = await api('cases/open', {method: 'POST', headers: {'content-type': 'application/json'},
                                                 body: JSON.stringify({path: c.path})});
            await refreshCases(); await openCase(r.id); }
      catch (e) { say(e.message, true); }
    };
    box.append(b);
  }
}

async function main() {
  const guard = (f) => async (...a) => { try { say(''); await f(...a); } catch (e) { say(e.message, true); } };
  $('upload-form').onsubmit = guard(upload);
  $('study-form').onsubmit = guard(uploadStudy);
  $('study-open').onclick = guard(async () => {
    await showStudy(await api('studies/open', {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({path: $('study-path').value})}));
  });
  $('phantom').onclick = guard(async () => {
    say('making a phantom case…');
    const c = await api('cases/phantom', {method: 'POST', headers: {'content-type': 'application/json'},
                                          body: JSON.stringify({seed: Number($('seed').value)})});
    say(`opened ${c.name}`);
    await refreshCases(); await openCase(c.id);
  });
  $('segment').onclick = guard(segment);
  $('compare').onclick = guard(compareCases);
  $('edit').onchange = guard(toggleEdit);
  $('save').onclick = guard(saveEdit);
  $('undo').onclick = () => views && views.main.drawUndo();
  $('fill').onchange = () => views && views.main.setPenValue(views.main.opts.penValue, $('fill').checked);
  $('opacity').oninput = () => { state.opacity = Number($('opacity').value); restyle(); };
  $('outline').onchange = () => { state.outline = $('outline').checked; restyle(); };
  $('show-expert').onchange = () => { $('gl-expert').hidden = !$('show-expert').checked; views && views.expert.resizeListener(); };
  document.querySelectorAll('input[name=seq]').forEach((r) => { r.onchange = guard(async () => {
    state.seq = r.value;
    if (state.case && views) {
      await views.main.loadVolumes([{url: caseUrl(`image/${state.seq}.nii.gz`), name: `${state.seq}.nii.gz`}]);
      const shown = state.shownMask; state.shownMask = null;
      if (shown) await showMask(shown);
    }
  }); });
  await guard(async () => {
    const h = await api('health');
    const m = await api('model');
    $('model-info').textContent = m.model ? `model ${m.model} (${(m.weights_sha256 || '').slice(0, 12)})` : 'no model';
    await loadViewer();
    await dataCases();
    await refreshCases();
    document.body.dataset.ready = 'yes';
  })();
}

main();
