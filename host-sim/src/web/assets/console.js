// The console's one script: a form with a data-step posts that step (its fields filled in
// from the form), after a confirmation where the page asks for one; the answer is shown,
// the page waits for the change's delivery to the devices, then reloads.
const csrf = document.querySelector('meta[name=csrf]').content;
function show(kind, text) { const a = document.getElementById('answer'); a.className = kind; a.textContent = text; }
async function post(step) {
  const r = await fetch('/api/steps', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(step) });
  const body = await r.json().catch(() => ({ error: 'the server answered ' + r.status }));
  if (!r.ok) { show('error', body.error); return; }
  show('done', body.output);
  if (body.delivery) await delivered(body.delivery, body.output);
  setTimeout(() => location.reload(), 400);
}
async function delivered(id, output) {
  for (;;) {
    const list = await (await fetch('/api/deliveries')).json().catch(() => []);
    const d = list.find((x) => x.id === id);
    if (!d || d.done) return;
    show('done', output + '\ndelivering: ' + d.delivered + ' of ' + d.total + ' devices');
    await new Promise((ok) => setTimeout(ok, 200));
  }
}
function put(settings, path, value) { const [s, k] = path.split('.'); (settings[s] = settings[s] || {})[k] = value; }
function read(input) {
  if (input.type === 'checkbox') return input.checked;
  if (input.type === 'number') return Number(input.value);
  return input.value;
}
// The settings a policy or profile form sets: each ticked "set" row, its value and lock;
// an acceptance names the versions of the statements the administrator opened.
function settingsOf(form) {
  const settings = {};
  form.querySelectorAll('[data-set]').forEach((set) => {
    if (!set.checked) return;
    const path = set.dataset.set, input = form.querySelector('[data-value="' + path + '"]');
    const entry = { value: read(input), locked: form.querySelector('[data-lock="' + path + '"]').checked };
    if (input.dataset.statements !== undefined && entry.value === true) {
      // The statements read now; else, an acceptance saved before keeps what it accepted.
      const versions = {};
      form.querySelectorAll('details[data-statement][data-read="yes"][data-for="' + path + '"]').forEach((d) => {
        // One version, or several where the statement was read in several plugin versions.
        const v = Number(d.dataset.version), had = versions[d.dataset.statement];
        versions[d.dataset.statement] = had === undefined ? v : [].concat(had, v).sort((a, b) => a - b);
      });
      if (Object.keys(versions).length > 0) entry.versions = versions;
      else if (input.dataset.statements !== '') entry.versions = JSON.parse(input.dataset.statements);
    }
    put(settings, path, entry);
  });
  return settings;
}
document.addEventListener('submit', (e) => {
  const form = e.target; if (!form.dataset.step) return; e.preventDefault();
  const step = JSON.parse(form.dataset.step);
  if (form.dataset.policy !== undefined) {
    step.policy = { settings: settingsOf(form) };
    const force = form.querySelector('[name=force_inheritance]'); if (force) step.force_inheritance = force.checked;
  }
  if (form.dataset.profile !== undefined) {
    const away = form.querySelector('[name=out_of_office]').value;
    const tags = form.querySelector('[name=tags]').value.split(',').map((t) => t.trim()).filter((t) => t);
    const when = { tags }; if (away !== '') when.out_of_office = away === 'true';
    step.profile = { name: form.querySelector('[name=profile_name]').value, when, settings: settingsOf(form) };
    const priority = form.querySelector('[name=priority]').value; if (priority !== '') step.priority = Number(priority);
  }
  form.querySelectorAll('[data-field]').forEach((input) => {
    if (input.type === 'checkbox' && input.dataset.unset !== undefined && !input.checked) return;
    if (input.value === '' && input.dataset.optional !== undefined) return;
    let value = read(input);
    if (input.dataset.list !== undefined) value = value.split(',').map((t) => t.trim()).filter((t) => t);
    if (input.dataset.prefixed !== undefined) value = (form.dataset.prefix || '') + value;
    if (input.dataset.json !== undefined) value = JSON.parse(value);
    step[input.dataset.field] = value;
  });
  form.querySelectorAll('[data-local]').forEach((input) => {
    const settings = {}; let value = read(input);
    if (input.dataset.versions && value === true) value = { value, versions: JSON.parse(input.dataset.versions) };
    put(settings, input.dataset.local, value); step.settings = settings;
  });
  if (form.dataset.selected !== undefined) {
    const devices = [...document.querySelectorAll('input[name=device]:checked')].map((i) => Number(i.value));
    if (devices.length === 0) { show('error', 'Select the devices first (the boxes in the list).'); return; }
    step.on = { devices };
  }
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  post(step);
});
document.addEventListener('change', (e) => {
  if (e.target.dataset.local && e.target.type === 'checkbox') {
    if (!e.target.checked && e.target.dataset.withdraw && !window.confirm(e.target.dataset.withdraw)) { e.target.checked = true; return; }
    e.target.form.requestSubmit();
  }
  if (e.target.id === 'select-all') document.querySelectorAll('input[name=device]').forEach((i) => { i.checked = e.target.checked; });
});
// An acceptance box is enabled once a statement it accepts has been read.
document.querySelectorAll('details[data-statement]').forEach((d) => d.addEventListener('toggle', () => {
  if (!d.open) return;
  d.dataset.read = 'yes';
  const scope = d.closest('form') || document;
  scope.querySelectorAll('[data-value="' + d.dataset.for + '"][data-statements]').forEach((i) => { i.disabled = false; i.title = ''; });
}));
