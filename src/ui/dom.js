// DOM helpers. Every piece of text goes in as a text node (textContent): nothing stored in
// the memory service is ever parsed as HTML.

/** Element `tag` with attributes (`on*` functions become listeners; `null`/`false` are
 *  skipped) and children (strings become text nodes; arrays are flattened). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An RFC 3339 time as shown everywhere: `2024-05-08 13:56:00Z` (null: an em dash). */
export function fmtTime(iso) {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A <time> element showing `fmtTime(iso)`. */
export function time(iso) {
  return iso ? h('time', { datetime: iso }, fmtTime(iso)) : '—';
}

/** A data table: `columns` are [key, header, render(row) → node or text]; each body row gets
 *  `data-row` and `data-id`, each cell `data-field`. `extra(row)` may return a second row
 *  (hidden details) to insert after it. */
export function table(caption, columns, rows, { id = r => r.id, empty = 'Nothing here yet.' } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(([, label]) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, rows.map(r => h('tr', { 'data-row': true, 'data-id': id(r) },
      columns.map(([key, , render]) => h('td', { 'data-field': key }, render ? render(r) : fmtValue(r[key])))))));
}

/** A plain value as text. */
export function fmtValue(v) {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

/** Announce a message in the status region (and as an alert when it is an error). */
export function say(text, error = false) {
  const s = document.getElementById('status');
  s.className = error ? 'status error' : 'status';
  s.setAttribute('role', error ? 'alert' : 'status');
  put(s, text);
  clearTimeout(say.timer);
  say.timer = setTimeout(() => put(s), 8000);
}

/** Show the modal dialog with `title` and `body` nodes; resolves true when OK is chosen.
 *  `check()` may return an error text to keep the dialog open. */
export function ask(title, body, { ok = 'OK', danger = false, check = null } = {}) {
  const d = document.getElementById('dialog');
  put(document.getElementById('dialog-title'), title);
  const holder = put(document.getElementById('dialog-body'), body);
  const okBtn = document.getElementById('dialog-ok');
  okBtn.textContent = ok;
  okBtn.className = danger ? 'danger' : 'primary';
  const err = h('p', { class: 'error', role: 'alert' });
  holder.appendChild(err);
  return new Promise(resolve => {
    const form = document.getElementById('dialog-form');
    const cancel = document.getElementById('dialog-cancel');
    const done = v => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      d.removeEventListener('cancel', onCancel);
      if (d.open) d.close();
      resolve(v);
    };
    const onSubmit = e => {
      const problem = check ? check() : null;
      if (problem) { e.preventDefault(); put(err, problem); return; }
      e.preventDefault();
      done(true);
    };
    const onCancel = e => { e.preventDefault(); done(false); };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    d.addEventListener('cancel', onCancel);
    d.showModal();
    const first = holder.querySelector('input, textarea, select');
    (first || cancel).focus();
  });
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || ('f-' + Math.random().toString(36).slice(2));
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}
