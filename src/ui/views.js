// The pages. Each renders into `root` from the API's answers; text goes in as text only.
import { api, path, qs, ApiError } from './api.js';
import { h, put, table, time, fmtTime, fmtValue, say, ask, field } from './dom.js';

const PAGE = 50;

function heading(text, sub) {
  return h('div', { class: 'heading' }, h('h1', {}, text), sub ? h('p', { class: 'sub' }, sub) : null);
}

/** The page's `offset` from the URL: a whole number from 0 (anything else reads as 0). */
function offsetOf(params) {
  return Math.max(0, Math.floor(Number(params.get('offset')) || 0));
}

function pager(offset, count, total, go) {
  const prev = h('button', { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, '← Previous');
  const next = h('button', { type: 'button', disabled: total !== undefined ? offset + count >= total : count < PAGE, onclick: () => go(offset + PAGE) }, 'Next →');
  const label = count ? `${offset + 1}–${offset + count}` + (total !== undefined ? ` of ${total}` : '') : (total !== undefined ? `0 of ${total}` : '');
  return h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, h('span', {}, label), next);
}

function setHash(base, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null && v !== 0) q.set(k, v);
  const s = q.toString();
  location.hash = base + (s ? '?' + s : '');
}

function userLink(id) {
  return h('a', { href: '#/u/' + encodeURIComponent(id) + '/memory' }, id);
}

// ---------------------------------------------------------------- users

export async function users(root, me, params) {
  const q = params.get('q') || '';
  const offset = offsetOf(params);
  const searchInput = h('input', { type: 'search', id: 'user-q', name: 'q', value: q });
  const form = h('form', { role: 'search', class: 'searchbar', onsubmit: e => { e.preventDefault(); setHash('#/users', { q: searchInput.value.trim() }); } },
    field('Search user ids', searchInput), h('button', { type: 'submit' }, 'Search'));
  const cols = [
    ['user_id', 'User', u => userLink(u.user_id)],
    ['turns', 'Turns'], ['episodes', 'Episodes'], ['facts', 'Facts'], ['rules', 'Rules'],
    ['jobs_waiting', 'Jobs waiting'], ['jobs_dead', 'Jobs dead'],
    ['last_activity', 'Last activity', u => time(u.last_activity)],
  ];
  if (me.all_users) {
    const data = await api('/api/users' + qs({ q, limit: PAGE, offset }));
    put(root, heading('Users', 'Everyone the service remembers something about: rows per tier, reflection jobs, last activity.'), form,
      table('Users', cols, data.users, { id: u => u.user_id, empty: q ? `No user id contains “${q}”.` : 'No users yet.' }),
      pager(offset, data.users.length, data.total, o => setHash('#/users', { q, offset: o })));
    return;
  }
  // A user-limited key: its own users only, each from its stats.
  const mine = me.users.filter(u => u.toLowerCase().includes(q.toLowerCase()));
  const rows = [];
  for (const u of mine) {
    const s = await api(path('/api/memory/stats', u));
    const w = s.jobs || {};
    rows.push({ user_id: u, turns: s.short_term.turns, episodes: s.episodic.episodes, facts: s.semantic.facts, rules: s.procedural.rules,
      jobs_waiting: (w.queued || 0) + (w.retrying || 0) + (w.processing || 0), jobs_dead: w.dead || 0, last_activity: null });
  }
  put(root, heading('Users', 'The users this API key may see.'),
    h('p', { class: 'notice', role: 'note' }, `This key is limited to ${me.users.length === 1 ? 'one user' : me.users.length + ' users'} (${me.users.join(', ')}). `
      + 'It cannot see any other user, the list of all users, or the operations page (queue, statistics, dead-letter jobs): those need an admin key.'),
    form, table('Users', cols.filter(c => c[0] !== 'last_activity'), rows, { id: u => u.user_id, empty: 'None of this key’s users matches.' }));
}

// ---------------------------------------------------------------- one user

const TIERS = [
  ['short_term', 'Short-term (turns)'], ['episodic', 'Episodic'], ['semantic', 'Semantic (facts)'], ['procedural', 'Procedural (rules)'],
];

export async function user(root, me, userId, sub, tier, params) {
  const tabs = [['memory', 'Memory'], ['rules', 'Rules'], ['timeline', 'Timeline'], ['recall', 'Recall playground']];
  const base = '#/u/' + encodeURIComponent(userId);
  const body = h('div', { class: 'tabbody' });
  put(root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/users' }, 'Users'), ' / ', userId),
    heading(userId),
    h('nav', { class: 'tabs', 'aria-label': 'User pages' }, tabs.map(([k, label]) =>
      h('a', { href: `${base}/${k}`, 'aria-current': k === sub ? 'page' : null }, label))),
    body);
  if (sub === 'rules') return rules(body, userId);
  if (sub === 'timeline') return timeline(body, userId, params);
  if (sub === 'recall') return recall(body, userId, params);
  return memory(body, userId, tier || 'episodic', params);
}

// Evidence: the turns a memory came from, looked up one by one.
function evidenceButton(userId, ids, jobId, label) {
  const out = h('div', { class: 'evidence', hidden: true });
  const btn = h('button', { type: 'button', class: 'small', 'aria-expanded': 'false', 'aria-label': `Show the evidence turns of ${label}`, onclick: async () => {
    const open = btn.getAttribute('aria-expanded') === 'true';
    btn.setAttribute('aria-expanded', String(!open));
    out.hidden = open;
    if (open || out.dataset.loaded) return;
    out.dataset.loaded = '1';
    const keys = ids.length ? ids.map(id => ['evidence', id]) : (jobId ? [['job_id', jobId]] : []);
    if (!keys.length) { put(out, h('p', {}, 'No evidence recorded.')); return; }
    put(out, h('p', {}, 'Loading…'));
    const items = [];
    for (const [by, id] of keys) {
      try {
        const t = await api(path('/api/memory/turn', userId) + qs({ [by]: id }));
        if (t.status === 'stored') {
          const who = (t.turn.metadata && t.turn.metadata.speaker) || t.turn.user_id;
          items.push(h('li', { 'data-evidence': id, 'data-status': 'stored' }, h('span', { class: 'eid' }, id), ' ', time(t.turn.timestamp), ' ', h('strong', {}, who + ': '), h('span', { class: 'turn-text' }, t.turn.user_message),
            t.turn.assistant_response ? h('div', { class: 'reply' }, 'Assistant: ', t.turn.assistant_response) : null));
        } else {
          items.push(h('li', { 'data-evidence': id, 'data-status': t.status }, h('span', { class: 'eid' }, id), ' ', h('em', {}, t.message)));
        }
      } catch (e) {
        items.push(h('li', { 'data-evidence': id, 'data-status': 'error' }, h('span', { class: 'eid' }, id), ' ', h('em', {}, e.message)));
      }
    }
    put(out, h('ul', {}, items));
  } }, 'Evidence');
  return [btn, out];
}

async function edit(userId, tierName, id, fields, label) {
  const inputs = fields.map(([name, text, value, kind]) => {
    const inp = kind === 'textarea' ? h('textarea', { name, rows: 4 }) : h('input', { name, type: kind || 'text', step: kind === 'number' ? 'any' : null, min: kind === 'number' ? 0 : null, max: kind === 'number' ? 1 : null });
    inp.value = value ?? '';
    return [name, inp, text, kind];
  });
  const ok = await ask(`Edit ${label}`, [h('p', {}, 'The change is recorded in the user’s edit history, and re-reflection will not bring the old version back.'),
    inputs.map(([, inp, text]) => field(text, inp))], {
    ok: 'Save change',
    // Numbers are checked here, so a bad one keeps the dialog open with what was typed.
    check: () => {
      const bad = inputs.find(([, inp, , kind]) => kind === 'number' && (inp.value.trim() === '' || !(Number(inp.value) >= 0 && Number(inp.value) <= 1)));
      return bad ? `${bad[0]} must be a number from 0 to 1.` : null;
    },
  });
  if (!ok) return false;
  const body = {};
  for (const [name, inp, , kind] of inputs) {
    const orig = fields.find(f => f[0] === name)[2];
    let v = inp.value;
    if (kind === 'number') v = Number(v);
    else if (name === 'tags') v = v.split(',').map(s => s.trim()).filter(Boolean);
    if (JSON.stringify(v) !== JSON.stringify(orig)) body[name] = v;
  }
  if (!Object.keys(body).length) { say('Nothing changed.'); return false; }
  try {
    await api(path('/api/memory', tierName, userId, String(id)), { method: 'PATCH', body });
    say(`Saved ${label}.`);
    return true;
  } catch (e) { say(`Not saved: ${e.message}`, true); return false; }
}

async function remove(userId, tierName, id, label, text) {
  const ok = await ask(`Delete ${label}?`, [h('blockquote', {}, text), h('p', {}, 'It is removed from recall at once and recorded in the edit history; re-reflection will not bring it back.')], { ok: 'Delete', danger: true });
  if (!ok) return false;
  try {
    await api(path('/api/memory', tierName, userId, String(id)), { method: 'DELETE' });
    say(`Deleted ${label}.`);
    return true;
  } catch (e) { say(`Not deleted: ${e.message}`, true); return false; }
}

async function memory(root, userId, tier, params) {
  const q = params.get('q') || '';
  const offset = offsetOf(params);
  const base = `#/u/${encodeURIComponent(userId)}/memory/${tier}`;
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const stats = await api(path('/api/memory/stats', userId));
  const counts = { short_term: stats.short_term.turns, episodic: stats.episodic.episodes, semantic: stats.semantic.facts, procedural: stats.procedural.rules };
  const tierNav = h('nav', { class: 'tiers', 'aria-label': 'Tiers' }, TIERS.map(([k, label]) =>
    h('a', { href: `#/u/${encodeURIComponent(userId)}/memory/${k}`, 'aria-current': k === tier ? 'page' : null }, `${label} · ${counts[k]}`)));
  const searchInput = h('input', { type: 'search', id: 'mem-q', name: 'q', value: q });
  const form = h('form', { role: 'search', class: 'searchbar', onsubmit: e => { e.preventDefault(); setHash(base, { q: searchInput.value.trim() }); } },
    field(`Search this tier`, searchInput), h('button', { type: 'submit' }, 'Search'), q ? h('a', { href: base }, 'Clear search') : null);
  const content = h('div', {});
  put(root, tierNav, form, content, forgetBox(userId));

  if (q) {
    const r = await api(path('/api/memory/search', userId) + qs({ query: q, tier, limit: 50 }));
    put(content, table(`Search results for “${q}” (best first)`, [
      ['score', 'Score', m => m.score.toFixed(3)], ['date', 'Date', m => time(m.date)], ['text', 'Memory', m => m.text],
      ['evidence', 'Evidence', m => evidenceButton(userId, m.evidence, null, `result ${m.id}`)],
    ], r.items, { id: m => m.id, empty: 'Nothing in this tier matches.' }));
    return;
  }
  const pagerFor = n => pager(offset, n, counts[tier], o => setHash(base, { offset: o }));
  if (tier === 'short_term') {
    const r = await api(path('/api/memory/short-term', userId) + qs({ limit: PAGE, offset }));
    put(content, table('Turns, newest first', [
      ['timestamp', 'When', t => time(t.timestamp)], ['session_id', 'Session'],
      ['speaker', 'Speaker', t => (t.metadata && t.metadata.speaker) || '—'],
      ['user_message', 'Message', t => t.user_message], ['assistant_response', 'Reply', t => t.assistant_response || '—'],
      ['evidence', 'Evidence id', t => (t.metadata && t.metadata.dia_id) || t.interaction_id],
      ['reflected', 'Reflected', t => t.reflected ? 'yes' : 'not yet'],
    ], r.turns, { id: t => t.interaction_id }), pagerFor(r.turns.length));
  } else if (tier === 'episodic') {
    const r = await api(path('/api/memory/episodic', userId) + qs({ limit: PAGE, offset }));
    put(content, table('Episodes, most recent event first', [
      ['occurred_at', 'Happened', e => time(e.occurred_at)], ['text', 'Episode', e => e.text],
      ['importance', 'Importance', e => e.importance.toFixed(2)], ['tags', 'Tags', e => fmtValue(e.tags)],
      ['evidence', 'Evidence', e => evidenceButton(userId, e.evidence, e.job_id, `episode ${e.id}`)],
      ['actions', 'Actions', e => h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Edit episode ${e.id}`, onclick: async () => {
          if (await edit(userId, 'episodic', e.id, [['text', 'Text', e.text, 'textarea'], ['importance', 'Importance (0 to 1)', e.importance, 'number'], ['tags', 'Tags (comma-separated)', e.tags]], `episode ${e.id}`)) reload();
        } }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete episode ${e.id}`, onclick: async () => {
          if (await remove(userId, 'episodic', e.id, `episode ${e.id}`, e.text)) reload();
        } }, 'Delete'))],
    ], r.episodes), pagerFor(r.episodes.length));
  } else if (tier === 'semantic') {
    const r = await api(path('/api/memory/semantic', userId) + qs({ limit: PAGE, offset }));
    put(content, table('Facts, newest first (current and ended)', [
      ['subject', 'Subject'], ['predicate', 'Predicate'], ['object', 'Object'], ['fact', 'Fact', f => f.fact],
      ['valid_at', 'Since', f => time(f.valid_at)],
      ['invalid_at', 'Status', f => f.invalid_at ? h('span', { class: 'badge old' }, 'ended ', time(f.invalid_at)) : h('span', { class: 'badge current' }, 'current')],
      ['evidence', 'Evidence', f => evidenceButton(userId, f.evidence, null, `fact ${f.id}`)],
      ['actions', 'Actions', f => h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Edit fact ${f.id}`, onclick: async () => {
          if (await edit(userId, 'semantic', f.id, [['object', 'Object', f.object], ['fact', 'Fact sentence', f.fact, 'textarea']], `fact ${f.id}`)) reload();
        } }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete fact ${f.id}`, onclick: async () => {
          if (await remove(userId, 'semantic', f.id, `fact ${f.id}`, f.fact)) reload();
        } }, 'Delete'))],
    ], r.facts), pagerFor(r.facts.length),
    h('h2', {}, 'Entities'),
    table('Entities', [['name', 'Name'], ['kind', 'Kind'], ['aliases', 'Aliases']], r.entities, { empty: 'No entities on this page.' }));
  } else {
    const r = await api(path('/api/memory/procedural', userId) + qs({ limit: PAGE, offset, include_superseded: true }));
    put(content, ruleTable(userId, r.rules, reload), pagerFor(r.rules.length));
  }
}

function ruleTable(userId, rows, reload, caption = 'Rules, newest first (active and superseded)') {
  return table(caption, [
    ['statement', 'Rule', r => r.statement], ['kind', 'Kind'], ['topic', 'Topic'],
    ['confidence', 'Confidence', r => r.confidence.toFixed(2)], ['stated_at', 'Stated', r => time(r.stated_at)],
    ['superseded_by', 'Status', r => r.superseded_by ? h('span', { class: 'badge old' }, `superseded by #${r.superseded_by}`) : h('span', { class: 'badge current' }, 'active')],
    ['evidence', 'Evidence', r => evidenceButton(userId, r.evidence, null, `rule ${r.id}`)],
    ['actions', 'Actions', r => h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'small', 'aria-label': `Edit rule ${r.id}`, onclick: async () => {
        if (await edit(userId, 'procedural', r.id, [['statement', 'Statement', r.statement, 'textarea']], `rule ${r.id}`)) reload();
      } }, 'Edit'),
      h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete rule ${r.id}`, onclick: async () => {
        if (await remove(userId, 'procedural', r.id, `rule ${r.id}`, r.statement)) reload();
      } }, 'Delete'))],
  ], rows);
}

function forgetBox(userId) {
  const btn = h('button', { type: 'button', class: 'danger', onclick: async () => {
    const input = h('input', { type: 'text', name: 'confirm-user', autocomplete: 'off', spellcheck: 'false' });
    const ok = await ask(`Forget ${userId}?`, [
      h('p', {}, 'Every turn, episode, fact, rule, job and edit record of this user is deleted. This cannot be undone.'),
      field(`Type the user id (${userId}) to confirm`, input)],
    { ok: 'Forget this user', danger: true, check: () => input.value === userId ? null : 'The text typed is not the user id.' });
    if (!ok) return;
    try {
      const r = await api(path('/api/memory/user', userId), { method: 'DELETE' });
      const n = Object.values(r.removed).reduce((a, b) => a + b, 0);
      say(`Forgot ${userId}: ${n} rows removed.`);
      location.hash = '#/users';
    } catch (e) { say(`Not forgotten: ${e.message}`, true); }
  } }, 'Forget this user…');
  return h('section', { class: 'card danger-zone', 'aria-labelledby': 'forget-h' }, h('h2', { id: 'forget-h' }, 'Forget this user'),
    h('p', {}, 'Deletes all of this user’s memory, after you type the user id.'), btn);
}

// ---------------------------------------------------------------- rules

async function rules(root, userId) {
  const r = await api(path('/api/memory/procedural', userId) + qs({ limit: 500, include_superseded: true }));
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  const byId = new Map(r.rules.map(x => [x.id, x]));
  const active = r.rules.filter(x => !x.superseded_by);
  // Rules each active rule replaced, directly or through a chain of replacements.
  const replaced = rule => {
    const out = [];
    let frontier = [rule.id];
    while (frontier.length) {
      const next = r.rules.filter(x => frontier.includes(x.superseded_by));
      out.push(...next);
      frontier = next.map(x => x.id);
    }
    return out.sort((a, b) => b.stated_at.localeCompare(a.stated_at));
  };
  put(root, h('p', { class: 'sub' }, 'Standing rules (Tier 4): what the assistant should always do. A new rule on the same topic supersedes the old one; the old ones are kept.'),
    table('Standing rules', [
      ['statement', 'Rule', x => x.statement], ['kind', 'Kind'], ['topic', 'Topic'],
      ['confidence', 'Confidence', x => x.confidence.toFixed(2)], ['stated_at', 'Stated', x => time(x.stated_at)],
      ['superseded', 'Supersedes', x => {
        const old = replaced(x);
        return old.length ? h('ul', { class: 'superseded' }, old.map(o => h('li', { 'data-rule': o.id }, h('s', {}, o.statement), ' ', h('small', {}, '(', fmtTime(o.stated_at), ', replaced by #', String(o.superseded_by), ')')))) : '—';
      }],
      ['evidence', 'Evidence', x => evidenceButton(userId, x.evidence, null, `rule ${x.id}`)],
    ], active, { empty: 'No standing rules.' }),
    r.rules.length > active.length ? h('details', {}, h('summary', {}, `All ${r.rules.length} rules, superseded ones included`), ruleTable(userId, r.rules, reload, 'All rules')) : null,
    byId.size >= 500 ? h('p', { class: 'hint' }, 'Showing the 500 newest rules.') : null);
}

// ---------------------------------------------------------------- timeline

async function timeline(root, userId, params) {
  const offset = offsetOf(params);
  const base = `#/u/${encodeURIComponent(userId)}/timeline`;
  const [r, stats] = await Promise.all([
    api(path('/api/memory/episodic', userId) + qs({ limit: PAGE, offset })),
    api(path('/api/memory/stats', userId)),
  ]);
  const days = [];
  for (const e of r.episodes) {
    const day = e.occurred_at.slice(0, 10);
    if (!days.length || days[days.length - 1].day !== day) days.push({ day, items: [] });
    days[days.length - 1].items.push(e);
  }
  put(root, h('p', { class: 'sub' }, 'Episodes by when they happened, most recent first, with importance and tags.'),
    r.episodes.length ? h('ol', { class: 'timeline', 'aria-label': 'Timeline' }, days.map(d => h('li', { class: 'day' },
      h('h2', {}, h('time', { datetime: d.day }, d.day)),
      h('ol', {}, d.items.map(e => h('li', { class: 'event', 'data-row': true, 'data-id': e.id },
        h('div', { class: 'meta' }, h('span', { 'data-field': 'occurred_at' }, time(e.occurred_at)),
          h('span', { class: 'imp', 'data-field': 'importance', title: 'importance' }, e.importance.toFixed(2)),
          h('meter', { min: 0, max: 1, value: e.importance, 'aria-label': `importance ${e.importance.toFixed(2)}` }),
          h('span', { class: 'tags', 'data-field': 'tags' }, e.tags.map(t => h('span', { class: 'tag' }, t)))),
        h('p', { 'data-field': 'text' }, e.text))))))) : h('p', { class: 'empty' }, 'No episodes yet.'),
    pager(offset, r.episodes.length, stats.episodic.episodes, o => setHash(base, { offset: o })));
}

// ---------------------------------------------------------------- recall

async function recall(root, userId, params) {
  const query = h('input', { type: 'search', id: 'recall-q', name: 'query', value: params.get('query') || '' });
  const limit = h('input', { type: 'number', id: 'recall-limit', name: 'limit', min: 1, max: 100, value: params.get('limit') || 10 });
  const maxTokens = h('input', { type: 'number', id: 'recall-max', name: 'max_tokens', min: 1, max: 1000000, value: params.get('max_tokens') || '' });
  const invalid = h('input', { type: 'checkbox', id: 'recall-invalid', name: 'include_invalid', checked: params.get('include_invalid') === 'true' });
  const out = h('div', { class: 'recall-out' });
  const base = `#/u/${encodeURIComponent(userId)}/recall`;
  const form = h('form', { class: 'card recall-form', onsubmit: e => {
    e.preventDefault();
    setHash(base, { query: query.value, limit: limit.value, max_tokens: maxTokens.value, include_invalid: invalid.checked ? 'true' : '' });
  } }, field('Query', query), h('div', { class: 'row' }, field('Items (limit)', limit), field('Token budget (max_tokens, optional)', maxTokens),
    h('div', { class: 'field check' }, invalid, h('label', { for: 'recall-invalid' }, 'Include facts that no longer hold'))),
  h('button', { type: 'submit', class: 'primary' }, 'Recall'));
  put(root, h('p', { class: 'sub' }, 'Exactly what GET /api/memory/context returns for this user: the block for the prompt, and every ranked item with its score, tier and evidence.'), form, out);
  if (!params.has('query') && !params.has('limit')) return;
  const r = await api(path('/api/memory/context', userId) + qs({ query: query.value, limit: limit.value, max_tokens: maxTokens.value, include_invalid: invalid.checked ? 'true' : '' }));
  const left = r.omitted_items || [];
  const inBlock = m => !left.some(o => o.tier === m.tier && o.id === m.id);
  put(out,
    h('h2', {}, 'Context block'),
    h('p', { class: 'hint', 'data-field': 'budget' }, `${r.context_tokens} tokens (estimated)`,
      r.max_tokens ? `; budget ${r.max_tokens}; ${r.omitted} item${r.omitted === 1 ? '' : 's'} left out to fit` : '; no budget asked'),
    h('pre', { class: 'context', 'data-field': 'context', tabindex: 0, 'aria-label': 'Context block' }, r.context || '(empty)'),
    h('h2', {}, 'Ranked items'),
    table('Ranked items, best first', [
      ['rank', '#', m => String(r.memories.indexOf(m) + 1)], ['tier', 'Tier'], ['score', 'Score', m => m.score.toFixed(3)],
      ['text', 'Memory', m => m.text], ['date', 'Date', m => time(m.date)],
      ['in_context', 'In the block', m => inBlock(m) ? 'yes' : h('span', { class: 'badge old' }, 'left out')],
      ['evidence', 'Evidence', m => evidenceButton(userId, m.evidence, null, `item ${r.memories.indexOf(m) + 1}`)],
    ], r.memories, { id: m => `${m.tier}:${m.id}`, empty: 'Nothing recalled.' }),
    r.max_tokens ? [h('h2', {}, 'Left out by the token budget'),
      h('p', { class: 'hint' }, 'Highest priority first: ranked items, then standing rules and recent turns outside the ranked list.'),
      left.length ? h('ol', { class: 'left-out', 'aria-label': 'Left out by the token budget' }, left.map(o =>
        h('li', { 'data-left-out': `${o.tier}:${o.id}` }, h('span', { class: 'badge' }, o.tier), ' ', o.text)))
        : h('p', { class: 'empty' }, 'Nothing: the whole context fits.')] : null);
}

// ---------------------------------------------------------------- operations

export async function ops(root, me, params = new URLSearchParams()) {
  if (!me.all_users) {
    put(root, heading('Operations'), h('p', { class: 'notice', role: 'note' },
      'This API key is limited to some users, so it cannot see the service’s health details, queue, statistics or dead-letter jobs. Those need an admin key.'));
    return;
  }
  const offset = offsetOf(params);
  const [health, queue, stats, dlq] = await Promise.all([
    fetch('/api/reflection/health').then(r => r.json()),
    api('/api/reflection/queue-status'), api('/api/reflection/stats'), api('/api/reflection/dlq' + qs({ limit: PAGE, offset })),
  ]);
  const dl = (pairs) => h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, fmtValue(v))]));
  const components = Object.entries(health.components || {});
  put(root, heading('Operations', 'Health, the reflection queue, and the jobs that died.'),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'h-health' }, h('h2', { id: 'h-health' }, 'Health: ', h('span', { class: `badge ${health.status}` }, health.status)),
        h('ul', { class: 'plain' }, components.map(([name, c]) => h('li', {}, h('strong', {}, name), ': ', c.status)))),
      h('section', { class: 'card', 'aria-labelledby': 'h-queue' }, h('h2', { id: 'h-queue' }, `Queue (${queue.backend})`),
        dl([['waiting', queue.queue.waiting], ['oldest waiting (s)', queue.queue.oldest_waiting_age_s.toFixed(1)], ['leased', queue.queue.leased],
          ['dead', queue.queue.dead], ['deepest user backlog', queue.queue.deepest_user_waiting]])),
      h('section', { class: 'card', 'aria-labelledby': 'h-stats' }, h('h2', { id: 'h-stats' }, 'Jobs'),
        dl([...Object.entries(stats.jobs), ['completed/s (last minute)', stats.completed_per_s_last_minute.toFixed(2)]]))),
    h('h2', {}, 'Dead-letter jobs'),
    table('Dead reflection jobs, newest first', [
      ['job_id', 'Job'], ['user_id', 'User', j => userLink(j.user_id)],
      ['dead_reason', 'Reason', j => j.dead_reason || j.last_error || '—'], ['attempts', 'Attempts'],
      ['updated_at', 'Died', j => time(j.updated_at)],
      ['actions', 'Replay', j => h('button', { type: 'button', class: 'small', 'aria-label': `Replay job ${j.job_id}`, onclick: async e => {
        e.target.disabled = true;
        try {
          const r = await api('/api/reflection/dlq/replay', { method: 'POST', body: { job_ids: [j.job_id] } });
          say(r.replayed ? `Job ${j.job_id} is queued again.` : `Job ${j.job_id} was not replayed.`, !r.replayed);
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        } catch (err) { e.target.disabled = false; say(`Not replayed: ${err.message}`, true); }
      } }, 'Replay')],
    ], dlq.jobs, { id: j => j.job_id, empty: 'No dead jobs.' }),
    pager(offset, dlq.jobs.length, queue.queue.dead, o => setHash('#/ops', { offset: o })));
}

export { ApiError };
