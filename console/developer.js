// The developer views, for Agentry used as a Graph stand-in: the request
// journal followed live (#/developer), fault rules (#/developer/faults),
// and reset and snapshots (#/developer/data). They call the control plane
// (/_agentry/…), which takes an Agentry.Admin token: an application's, or a
// Global Administrator's with the delegated scope.

import { h, fill, errorBox, loading, when, announce, facts, orNone, confirmDelete } from './dom.js';
import { call, query } from './graph.js';
import { allows } from './session.js';
import { select, textField as input } from './lists.js';

const METHODS = ['', 'GET', 'POST', 'PATCH', 'PUT', 'DELETE'];
/** How often the journal is read again while following it. */
const FOLLOW_MS = 2000;
/** Rows kept on the page while following. */
const MAX_ROWS = 500;

const TABS = [
  ['requests', '#/developer', 'Requests'],
  ['faults', '#/developer/faults', 'Fault rules'],
  ['data', '#/developer/data', 'Reset and snapshots'],
];

function tabs(current) {
  return h('nav', { class: 'tabs', 'aria-label': 'Developer tools' },
    TABS.map(([name, href, label]) =>
      h('a', { href, id: `tab-${name}`, 'aria-current': name === current ? 'page' : undefined }, label)));
}

/**
 * The frame of each developer view: its heading and tabs, and, when the
 * token may not use the control plane, what it needs instead of the view.
 */
function frame(main, current, title) {
  const verdict = allows('Control');
  const body = h('div', { id: 'developer' });
  fill(main, h('h1', { tabindex: '-1' }, title), tabs(current), body);
  if (!verdict.ok) {
    fill(body, h('p', { class: 'unavailable', id: 'control-needs' },
      `The developer tools call Agentry's control plane, which needs ${verdict.needs}.`));
    return null;
  }
  return body;
}

/** Saves `text` as a file named `name` (a download the browser keeps). */
function save(text, name, media = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type: media }));
  const link = h('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function size(bytes) {
  return bytes < 1024 ? `${bytes} bytes` : `${(bytes / 1024).toFixed(1)} KB`;
}

// ---------------------------------------------------------------- requests

function readFilter(params) {
  const method = METHODS.includes(params.get('method') ?? '') ? params.get('method') ?? '' : '';
  const status = /^\d{3}$/.test(params.get('status') ?? '') ? params.get('status') : '';
  return {
    method,
    status,
    pathPrefix: (params.get('pathPrefix') ?? '').trim(),
    clientRequestId: (params.get('clientRequestId') ?? '').trim(),
  };
}

function filterHash(f) {
  const p = new URLSearchParams();
  for (const name of ['method', 'status', 'pathPrefix', 'clientRequestId']) {
    if (f[name]) p.set(name, f[name]);
  }
  const text = p.toString();
  return text ? `#/developer?${text}` : '#/developer';
}

function filterPairs(f) {
  return [['method', f.method], ['status', f.status], ['pathPrefix', f.pathPrefix], ['clientRequestId', f.clientRequestId]];
}

function statusBadge(status) {
  const kind = status >= 500 ? 'warn' : status >= 400 ? 'quarantined' : 'ok';
  return h('span', { class: `badge ${kind}` }, String(status));
}

function headerList(headers) {
  if (!headers || headers.length === 0) return h('p', { class: 'muted' }, 'Not kept.');
  return h('dl', { class: 'facts headers' },
    headers.map((x) => [h('dt', null, x.name), h('dd', null, x.value)]));
}

function bodyBlock(body) {
  if (!body) return h('p', { class: 'muted' }, 'Not kept.');
  let text = body.text ?? '';
  try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as it is */ }
  return [
    h('p', { class: 'muted' }, `${body.mimeType || 'no media type'}, ${size(body.size ?? 0)}`),
    h('pre', { class: 'raw' }, text),
  ];
}

function detail(entry) {
  const caller = entry.caller ?? {};
  return h('section', { class: 'panel', id: 'request-detail', 'aria-labelledby': 'request-detail-heading' },
    h('h2', { id: 'request-detail-heading', tabindex: '-1' }, `${entry.method} ${entry.path}`),
    facts([
      ['Started', when(entry.startedDateTime)],
      ['Status', statusBadge(entry.status)],
      ['Latency', `${entry.latencyMs} ms`],
      ['Query', orNone(entry.query)],
      ['Request id', h('code', { class: 'request-id' }, entry.requestId)],
      ['Client request id', orNone(entry.clientRequestId)],
      ['Caller', orNone([caller.appId && `application ${caller.appId}`, caller.objectId && `object ${caller.objectId}`].filter(Boolean))],
      ['Sequence', String(entry.sequence)],
    ]),
    h('div', { class: 'two' },
      h('div', null, h('h3', null, 'Request headers'), headerList(entry.requestHeaders),
        h('h3', null, 'Request body'), bodyBlock(entry.requestBody)),
      h('div', null, h('h3', null, 'Response headers'), headerList(entry.responseHeaders),
        h('h3', null, 'Response body'), bodyBlock(entry.responseBody))),
    entry.requestHeaders?.length ? null : h('p', { class: 'hint' },
      'Headers and bodies are kept when the server runs with --journal-bodies true.'));
}

/** Renders the request journal; `alive()` is false once the reader went elsewhere. */
export function renderRequests(main, params, { alive }) {
  const body = frame(main, 'requests', 'Requests');
  if (!body) return;
  const f = readFilter(params);
  const form = h('form', { class: 'panel', id: 'journal-form', 'aria-label': 'Filter the requests' },
    h('div', { class: 'row' },
      select('method', 'Method', METHODS.map((m) => [m, m || 'Any']), f.method),
      input('status', 'Status', f.status, { inputmode: 'numeric', pattern: '[1-5][0-9][0-9]', size: 4 }),
      h('div', { class: 'field grow' }, h('label', { for: 'pathPrefix' }, 'Path starts with'),
        h('input', { id: 'pathPrefix', name: 'pathPrefix', value: f.pathPrefix, autocomplete: 'off', placeholder: '/beta/agentRegistry' })),
      input('clientRequestId', 'Client request id', f.clientRequestId),
      h('div', { class: 'field' }, h('span', { class: 'label-space', 'aria-hidden': 'true' }, ' '),
        h('button', { type: 'submit', id: 'journal-button' }, 'Show'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    location.hash = filterHash({
      method: data.get('method'), status: String(data.get('status') ?? '').trim(),
      pathPrefix: String(data.get('pathPrefix') ?? '').trim(),
      clientRequestId: String(data.get('clientRequestId') ?? '').trim(),
    });
  });
  form.querySelector('#method').addEventListener('change', () => form.requestSubmit());

  const follow = h('input', { type: 'checkbox', id: 'follow', checked: true });
  const har = h('button', { type: 'button', id: 'download-har' }, 'Download HAR');
  const clear = h('button', { type: 'button', id: 'clear-journal', class: 'danger' }, 'Clear');
  const status = h('div', { id: 'journal-status', role: 'status' });
  const rows = h('tbody', { id: 'requests' });
  const empty = h('p', { class: 'muted', id: 'journal-empty', hidden: true },
    'No requests yet. Calls to the Graph API of this tenant show here as they are answered.');
  const table = h('div', { class: 'table-wrap' },
    h('table', null,
      h('caption', { class: 'visually-hidden' }, 'Requests, newest first'),
      h('thead', null, h('tr', null,
        ['Time', 'Method', 'Path', 'Status', 'ms', 'Request id'].map((t) => h('th', { scope: 'col' }, t)))),
      rows));
  const where = h('div', { id: 'request-detail-slot' });
  fill(body, form,
    h('div', { class: 'actions' },
      h('label', { class: 'check' }, follow, ' Follow live'), har, clear),
    status, empty, table, where);

  let last = 0;
  let timer = null;
  let reading = false;

  function row(entry) {
    const open = h('button', { type: 'button', class: 'link', 'data-sequence': String(entry.sequence) },
      entry.path + (entry.query ? `?${entry.query}` : ''));
    open.addEventListener('click', () => {
      fill(where, detail(entry));
      where.querySelector('h2').focus();
    });
    return h('tr', null,
      h('td', null, when(entry.startedDateTime)),
      h('td', null, entry.method),
      h('td', { class: 'path' }, open),
      h('td', null, statusBadge(entry.status)),
      h('td', { class: 'number' }, String(entry.latencyMs)),
      h('td', null, h('code', { class: 'request-id' }, entry.requestId)));
  }

  async function read() {
    timer = null;
    if (!alive() || reading) return;
    reading = true;
    try {
      const r = await call('GET', `/_agentry/requests${query([...filterPairs(f), ['after', last || '']])}`);
      if (!alive()) return;
      const entries = r.json?.value ?? [];
      for (const entry of entries) {
        rows.prepend(row(entry));
        last = Math.max(last, entry.sequence);
      }
      while (rows.children.length > MAX_ROWS) rows.lastElementChild.remove();
      empty.hidden = rows.children.length > 0;
      fill(status);
    } catch (error) {
      if (!alive()) return;
      fill(status, errorBox(error, 'The journal could not be read'));
    } finally {
      reading = false;
    }
    if (follow.checked && alive()) timer = setTimeout(read, FOLLOW_MS);
  }

  follow.addEventListener('change', () => {
    if (follow.checked && !timer && !reading) read();
    if (!follow.checked && timer) { clearTimeout(timer); timer = null; }
  });
  har.addEventListener('click', async () => {
    har.disabled = true;
    try {
      const r = await call('GET', `/_agentry/requests.har${query(filterPairs(f))}`);
      const n = r.json?.log?.entries?.length ?? 0;
      save(r.text, 'agentry-requests.har');
      fill(status, h('p', { class: 'notice', id: 'har-saved' }, `Saved agentry-requests.har: ${n} request${n === 1 ? '' : 's'}, ${size(r.text.length)}.`));
    } catch (error) {
      fill(status, errorBox(error, 'The archive could not be made'));
    } finally {
      har.disabled = false;
    }
  });
  clear.addEventListener('click', () => confirmDelete({
    title: 'Clear the request journal?',
    text: 'Every request the journal keeps for this tenant is forgotten, on this server process.',
    verb: 'Clear', busy: 'Clearing…', failed: 'The journal could not be cleared', returnTo: clear,
    remove: () => call('DELETE', '/_agentry/requests'),
    done: () => { rows.replaceChildren(); fill(where); empty.hidden = false; announce('The journal is cleared.'); },
  }));
  fill(status, loading('Reading the journal…'));
  read();
}

// ---------------------------------------------------------------- fault rules

function describe(rule) {
  const parts = [];
  if (rule.error) {
    parts.push(`answer ${rule.error.status}${rule.error.code ? ` ${rule.error.code}` : ''}`);
    if (rule.error.retryAfterSeconds) parts.push(`Retry-After ${rule.error.retryAfterSeconds} s`);
  }
  if (rule.delayMs) parts.push(`delay ${rule.delayMs} ms`);
  return parts.join(', ');
}

/** Renders the fault rules of the tenant. */
export function renderFaults(main, { alive }) {
  const body = frame(main, 'faults', 'Fault rules');
  if (!body) return;
  const status = h('div', { id: 'faults-status' });
  const list = h('div', { id: 'faults' });
  const number = (id, label, attrs) => input(id, label, '', { inputmode: 'numeric', ...attrs });
  const form = h('form', { class: 'panel', id: 'fault-form', 'aria-labelledby': 'fault-form-heading' },
    h('h2', { id: 'fault-form-heading' }, 'Add a rule'),
    h('p', { class: 'hint' },
      'Requests of this tenant to the Graph API whose path matches the pattern (* any run of characters, ? one) fail with the status, are delayed, or both.'),
    h('div', { class: 'row' },
      select('fault-method', 'Method', METHODS.map((m) => [m, m || 'Any']), ''),
      h('div', { class: 'field grow' }, h('label', { for: 'fault-path' }, 'Path pattern'),
        h('input', { id: 'fault-path', name: 'path', required: true, autocomplete: 'off', value: '/beta/agentRegistry/*' }))),
    h('div', { class: 'row' },
      number('fault-status', 'Status', { pattern: '[45][0-9][0-9]', size: 4 }),
      input('fault-code', 'Code'),
      h('div', { class: 'field grow' }, h('label', { for: 'fault-message' }, 'Message'),
        h('input', { id: 'fault-message', name: 'message', autocomplete: 'off' }))),
    h('div', { class: 'row' },
      number('fault-delay', 'Delay (ms)'),
      number('fault-count', 'Times'),
      input('fault-probability', 'Probability', '', { inputmode: 'decimal', placeholder: '1' }),
      input('fault-client-request-id', 'Client request id')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'add-fault' }, 'Add the rule')),
    h('div', { id: 'fault-form-status' }));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const rule = { path: value('fault-path') };
    if (value('fault-method')) rule.method = value('fault-method');
    if (value('fault-status')) {
      rule.error = { status: Number(value('fault-status')) };
      if (value('fault-code')) rule.error.code = value('fault-code');
      if (value('fault-message')) rule.error.message = value('fault-message');
    }
    if (value('fault-delay')) rule.delayMs = Number(value('fault-delay'));
    if (value('fault-count')) rule.count = Number(value('fault-count'));
    if (value('fault-probability')) rule.probability = Number(value('fault-probability'));
    if (value('fault-client-request-id')) rule.clientRequestId = value('fault-client-request-id');
    const out = form.querySelector('#fault-form-status');
    try {
      await call('POST', '/_agentry/faults', { body: rule });
      fill(out);
      announce('The rule is added.');
      load();
    } catch (error) {
      fill(out, errorBox(error, 'The rule was refused'));
    }
  });

  async function remove(target, what) {
    try {
      await call('DELETE', target);
      announce(what);
      load();
    } catch (error) {
      fill(status, errorBox(error, 'The rule could not be removed'));
    }
  }

  async function load() {
    try {
      const r = await call('GET', '/_agentry/faults');
      if (!alive()) return;
      const rules = r.json?.value ?? [];
      fill(status);
      if (rules.length === 0) {
        fill(list, h('p', { class: 'muted', id: 'no-faults' }, 'No rules: every request is answered as usual.'));
        return;
      }
      const removeAll = h('button', { type: 'button', id: 'remove-faults', class: 'danger' }, 'Remove every rule');
      removeAll.addEventListener('click', () => remove('/_agentry/faults', 'Every rule is removed.'));
      fill(list, h('div', { class: 'table-wrap' }, h('table', null,
        h('caption', { class: 'visually-hidden' }, 'Fault rules, in the order they apply'),
        h('thead', null, h('tr', null,
          ['Method', 'Path', 'Effect', 'Probability', 'Left', 'Applied', 'Client request id', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, rules.map((rule) => {
          const button = h('button', { type: 'button', class: 'danger', 'aria-label': `Remove the rule on ${rule.path}` }, 'Remove');
          button.addEventListener('click', () => remove(`/_agentry/faults/${encodeURIComponent(rule.id)}`, 'The rule is removed.'));
          return h('tr', { 'data-rule': rule.id },
            h('td', null, rule.method ?? 'Any'),
            h('td', null, h('code', null, rule.path)),
            h('td', null, describe(rule)),
            h('td', { class: 'number' }, String(rule.probability)),
            h('td', { class: 'number' }, rule.remaining ?? '∞'),
            h('td', { class: 'number' }, String(rule.applied)),
            h('td', null, orNone(rule.clientRequestId)),
            h('td', null, button));
        })))),
      h('div', { class: 'actions' }, removeAll));
    } catch (error) {
      if (!alive()) return;
      fill(status, errorBox(error, 'The rules could not be read'));
    }
  }

  fill(body, status, list, form,
    h('p', { class: 'hint' }, 'Rules live in this server process only: a restart forgets them, and each replica has its own.'));
  fill(list, loading('Reading the rules…'));
  load();
}

// ---------------------------------------------------------------- reset and snapshots

/** Renders reset, snapshot download and restore. */
export function renderData(main) {
  const body = frame(main, 'data', 'Reset and snapshots');
  if (!body) return;
  const status = h('div', { id: 'data-status', role: 'status' });
  const download = h('button', { type: 'button', id: 'download-snapshot' }, 'Download a snapshot');
  const file = h('input', { type: 'file', id: 'snapshot-file', accept: 'application/json,.json' });
  const restore = h('button', { type: 'button', id: 'restore-snapshot', disabled: true }, 'Restore');
  const reset = h('button', { type: 'button', id: 'reset', class: 'danger' }, 'Reset the tenant');
  file.addEventListener('change', () => { restore.disabled = file.files.length === 0; });

  download.addEventListener('click', async () => {
    download.disabled = true;
    try {
      const r = await call('GET', '/_agentry/snapshot');
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      save(r.text, `agentry-snapshot-${stamp}.json`);
      const tenant = Object.values(r.json?.tenants ?? {})[0] ?? {};
      const n = (tenant.agentInstances ?? []).length;
      fill(status, h('p', { class: 'notice', id: 'snapshot-saved' },
        `Saved a snapshot of ${n} agent instance${n === 1 ? '' : 's'}, ${size(r.text.length)}.`));
    } catch (error) {
      fill(status, errorBox(error, 'The snapshot could not be made'));
    } finally {
      download.disabled = false;
    }
  });
  restore.addEventListener('click', () => {
    const chosen = file.files[0];
    if (!chosen) return;
    confirmDelete({
      title: 'Replace the tenant with this snapshot?',
      text: `Everything the tenant holds is replaced by ${chosen.name}, in one transaction; a snapshot the server refuses changes nothing.`,
      verb: 'Restore', busy: 'Restoring…', failed: 'The snapshot was refused', returnTo: restore,
      remove: async () => call('PUT', '/_agentry/snapshot', { raw: await chosen.text() }),
      done: () => {
        fill(status, h('p', { class: 'notice', id: 'snapshot-restored' }, `Restored ${chosen.name}.`));
        announce('The snapshot is restored.');
      },
    });
  });
  reset.addEventListener('click', () => confirmDelete({
    title: 'Reset the tenant?',
    text: 'Every agent instance, manifest, collection, registration, package and Copilot policy of this tenant is deleted. Users, application registrations and keys stay.',
    verb: 'Reset', busy: 'Resetting…', failed: 'The tenant could not be reset', returnTo: reset,
    remove: () => call('POST', '/_agentry/reset'),
    done: () => {
      fill(status, h('p', { class: 'notice', id: 'reset-done' }, 'The tenant is reset.'));
      announce('The tenant is reset.');
    },
  }));

  fill(body, status,
    h('section', { class: 'panel', 'aria-labelledby': 'snapshot-heading' },
      h('h2', { id: 'snapshot-heading' }, 'Snapshots'),
      h('p', { class: 'hint' }, 'A snapshot is the tenant in the seed file format: keep it to restore later, or start a server with it (--seed).'),
      h('div', { class: 'actions' }, download),
      h('div', { class: 'row' },
        h('div', { class: 'field grow' }, h('label', { for: 'snapshot-file' }, 'Snapshot to restore'), file),
        h('div', { class: 'field' }, h('span', { class: 'label-space', 'aria-hidden': 'true' }, ' '), restore))),
    h('section', { class: 'panel', 'aria-labelledby': 'reset-heading' },
      h('h2', { id: 'reset-heading' }, 'Reset'),
      h('p', { class: 'hint' }, 'Back to an empty tenant, as a test run starts.'),
      h('div', { class: 'actions' }, reset)));
}
