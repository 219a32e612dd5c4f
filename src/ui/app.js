// The dashboard: a router over the URL fragment, the API key prompt, and what the key may see.
import { api, getKey, setKey, ApiError } from './api.js';
import { h, put, say } from './dom.js';
import * as views from './views.js';

const main = () => document.getElementById('main');
export const state = { me: null };

/** The routes: `#/users`, `#/u/{user}/{memory|rules|timeline|recall}[/tier]`, `#/ops`. */
function parse() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, query = ''] = raw.split('?');
  const decode = s => { try { return decodeURIComponent(s); } catch { return s; } };
  const parts = pathPart.split('/').map(decode);
  return { parts, params: new URLSearchParams(query) };
}

async function who() {
  const el = document.getElementById('who');
  try {
    state.me = await api('/api/me');
  } catch (e) {
    state.me = null;
    if (e instanceof ApiError && e.status === 401) {
      put(el, getKey() ? 'The key was refused.' : 'An API key is needed.');
      return false;
    }
    put(el, 'The server cannot be reached: ' + e.message);
    return false;
  }
  const me = state.me;
  const text = me.access === 'admin' ? `Admin key ${me.key_id}: every user and operations`
    : me.access === 'open' ? 'No API keys configured: everything is open (loopback only)'
    : `Key ${me.key_id}: only ${me.users.join(', ')}`;
  put(el, h('span', {}, text), getKey() ? h('button', { type: 'button', class: 'link', onclick: () => { setKey(null); route(); } }, 'Forget key') : null);
  return true;
}

function keyForm(reason) {
  const input = h('input', { type: 'password', id: 'key', name: 'key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'card narrow', onsubmit: e => { e.preventDefault(); setKey(input.value.trim()); route(); } },
    h('h1', {}, 'API key'),
    h('p', {}, reason),
    h('div', { class: 'field' }, h('label', { for: 'key' }, 'API key (admin, or limited to some users)'), input),
    h('p', { class: 'hint' }, 'The key is kept in this tab only (session storage) and sent to this server alone.'),
    h('button', { type: 'submit', class: 'primary' }, 'Use key'));
  put(main(), form);
  input.focus();
}

export async function route() {
  const { parts, params } = parse();
  document.querySelectorAll('[data-nav]').forEach(a => a.removeAttribute('aria-current'));
  if (!(await who())) {
    keyForm(getKey() ? 'The server refused this key. Enter another one.' : 'This server has API keys configured. Enter a key to continue.');
    return;
  }
  const [page, user, sub, tier] = parts;
  const nav = page === 'ops' ? 'ops' : 'users';
  const link = document.querySelector(`[data-nav="${nav}"]`);
  if (link) link.setAttribute('aria-current', 'page');
  try {
    if (page === 'ops') await views.ops(main(), state.me, params);
    else if (page === 'u' && user) await views.user(main(), state.me, user, sub || 'memory', tier, params);
    else await views.users(main(), state.me, params);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { keyForm('The server refused this key. Enter another one.'); return; }
    const forbidden = e instanceof ApiError && e.status === 403;
    put(main(), h('div', { class: 'card' },
      h('h1', {}, forbidden ? 'Not visible with this key' : 'This page could not be shown'),
      h('p', { class: 'error', role: 'alert' }, e.message),
      h('p', {}, h('button', { type: 'button', onclick: () => history.back() }, 'Go back'), ' ',
        h('a', { href: '#/users' }, forbidden ? 'The users this key may see' : 'All users'))));
  }
}

window.addEventListener('hashchange', () => { route(); });
window.addEventListener('error', e => say(e.message, true));
if (!location.hash) history.replaceState(null, '', '#/users');
route();
