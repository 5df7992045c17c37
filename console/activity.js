// The activity view: the audit log (/beta/auditLogs/directoryAudits) as a
// timeline, newest first, filtered by category, result, the object a record
// is about and a time window, paged by following @odata.nextLink.

import { h, fill, errorBox, loading, when, announce } from './dom.js';
import { call, query } from './graph.js';

const CATEGORIES = [
  ['', 'Every category'],
  ['AgentRegistry', 'Agent Registry'],
  ['AgentRegistration', 'Agent registrations'],
  ['CopilotCatalog', 'Copilot catalog'],
  ['CopilotSettings', 'Copilot settings'],
  ['ChangeNotifications', 'Change notifications'],
  ['Agentry', 'Control plane'],
];
const RESULTS = [['', 'Any result'], ['success', 'Succeeded'], ['failure', 'Refused']];
const WINDOWS = [['', 'Any time'], ['1', 'Last hour'], ['24', 'Last day'], ['168', 'Last week']];

/** The view's options from the hash's query (`#/activity?category=…`). */
function readOptions(params) {
  const pick = (name, choices) => (choices.some(([v]) => v === params.get(name)) ? params.get(name) : '');
  return {
    category: pick('category', CATEGORIES),
    result: pick('result', RESULTS),
    hours: pick('hours', WINDOWS),
    target: (params.get('target') ?? '').trim(),
  };
}

function optionsHash(o) {
  const p = new URLSearchParams();
  for (const name of ['category', 'result', 'hours', 'target']) {
    if (o[name]) p.set(name, o[name]);
  }
  const text = p.toString();
  return text ? `#/activity?${text}` : '#/activity';
}

/** An OData string literal. */
function literal(text) {
  return `'${text.replace(/'/g, "''")}'`;
}

function filterOf(o) {
  const terms = [];
  if (o.category) terms.push(`category eq ${literal(o.category)}`);
  if (o.result) terms.push(`result eq ${literal(o.result)}`);
  if (o.target) terms.push(`targetResources/any(t: t/id eq ${literal(o.target)})`);
  if (o.hours) {
    const since = new Date(Date.now() - Number(o.hours) * 3600 * 1000).toISOString();
    terms.push(`activityDateTime ge ${since}`);
  }
  return terms.join(' and ');
}

function select(id, label, choices, value) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, name: id },
      choices.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
}

/** Who made the change, as the record says. */
function initiator(record) {
  const by = record.initiatedBy ?? {};
  if (by.user) return by.user.userPrincipalName || by.user.id || 'a user';
  if (by.app) return by.app.displayName || by.app.appId || 'an application';
  return 'the service';
}

function changes(target) {
  const props = target.modifiedProperties ?? [];
  if (props.length === 0) return null;
  return h('ul', { class: 'changes' }, props.map((p) => h('li', null,
    h('code', null, p.displayName), ': ',
    h('span', { class: 'old' }, p.oldValue ?? '—'), ' → ',
    h('span', { class: 'new' }, p.newValue ?? '—'))));
}

function entry(record) {
  const refused = record.result === 'failure';
  return h('li', { class: refused ? 'event refused' : 'event' },
    h('div', { class: 'event-head' },
      when(record.activityDateTime),
      ' ',
      h('strong', null, record.activityDisplayName || record.operationType || 'Change'),
      refused ? h('span', { class: 'badge warn' }, 'refused') : null,
      h('span', { class: 'muted' }, ` · ${record.category || 'uncategorised'} · by ${initiator(record)}`)),
    refused && record.resultReason ? h('p', { class: 'reason' }, record.resultReason) : null,
    (record.targetResources ?? []).map((t) => h('div', { class: 'target' },
      h('span', { class: 'muted' }, `${t.type || 'Object'} `),
      h('code', null, t.displayName || t.id || '—'),
      changes(t))));
}

/** Renders the view; `alive()` is false once the reader went elsewhere. */
export function renderActivity(main, params, { alive }) {
  const o = readOptions(params);
  const targetInput = h('input', { type: 'text', id: 'target', name: 'target', value: o.target, autocomplete: 'off' });
  const form = h('form', { class: 'panel', id: 'activity-form', 'aria-label': 'Filter the activity' },
    h('div', { class: 'row' },
      select('category', 'Category', CATEGORIES, o.category),
      select('result', 'Result', RESULTS, o.result),
      select('hours', 'When', WINDOWS, o.hours),
      h('div', { class: 'field grow' }, h('label', { for: 'target' }, 'Object id'), targetInput),
      h('div', { class: 'field' }, h('span', { class: 'label-space', 'aria-hidden': 'true' }, ' '),
        h('button', { type: 'submit', id: 'activity-button' }, 'Show'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    location.hash = optionsHash({
      category: data.get('category'), result: data.get('result'), hours: data.get('hours'),
      target: String(data.get('target') ?? '').trim(),
    });
  });
  for (const id of ['category', 'result', 'hours']) {
    form.querySelector(`#${id}`).addEventListener('change', () => form.requestSubmit());
  }
  const list = h('ol', { class: 'timeline', id: 'activity' });
  const status = h('div', { id: 'activity-status' }, loading('Loading the activity…'));
  const more = h('div', { class: 'pager' });
  fill(main, h('h1', { tabindex: '-1' }, 'Activity'),
    h('p', { class: 'muted' }, 'Every change the registry recorded, newest first.'),
    form, status, list, more);

  const filter = filterOf(o);
  load(`/auditLogs/directoryAudits${query([['$top', 50], ['$count', 'true'], ['$filter', filter]])}`, true);

  async function load(target, first) {
    let page;
    try {
      page = await call('GET', target);
    } catch (error) {
      if (!alive()) return;
      fill(status, errorBox(error, 'The activity could not be read'));
      fill(more);
      return;
    }
    if (!alive()) return;
    const records = page.json.value ?? [];
    for (const record of records) list.append(entry(record));
    if (first) {
      const total = page.json['@odata.count'];
      const text = total === undefined ? `${records.length} records` : `${total} record${total === 1 ? '' : 's'}`;
      fill(status, records.length === 0
        ? h('p', { class: 'muted', id: 'activity-count' }, 'No activity matches.')
        : h('p', { id: 'activity-count' }, text));
      announce(text);
    }
    const next = page.json['@odata.nextLink'];
    if (next) {
      const button = h('button', { type: 'button', id: 'activity-more' }, 'Older activity');
      button.addEventListener('click', () => {
        fill(more, loading('Loading…'));
        load(next, false);
      });
      fill(more, button);
    } else {
      fill(more);
    }
  }
}
