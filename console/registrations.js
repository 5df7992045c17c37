// The registrations views: /beta/copilot/agentRegistrations, the Agent 365
// successor of agent instances. The list (sorted, counted, paged by
// following @odata.nextLink) and one registration: its details, its A2A
// card rendered for people (v1.0 or v0.3), what Agentry knows of the card
// (validation, signature, health), the raw JSON, and delete (If-Match).
// The list can instead show the agents whose card checks match a filter
// (#/registrations?health=drifted), from the control plane's
// /_agentry/a2a/agents.

import { h, fill, errorBox, loading, when, orNone, facts, confirmDelete as askToDelete } from './dom.js';
import { call, key, query } from './graph.js';
import { allows } from './session.js';
import { pagedList, nameCell, select } from './lists.js';

const SET = '/copilot/agentRegistrations';

/** The card-check filters: [name, label, [value, text]…]. */
const CHECKS = [
  ['validation', 'Validation', [['', 'Any'], ['valid', 'Valid'], ['invalid', 'Invalid']]],
  ['signature', 'Signature', [['', 'Any'], ['verified', 'Verified'], ['unsigned', 'Unsigned'],
    ['invalid', 'Invalid'], ['untrusted-key', 'Untrusted key'], ['expired-key', 'Expired key'],
    ['revoked-key', 'Revoked key']]],
  ['health', 'Health', [['', 'Any'], ['healthy', 'Healthy'], ['drifted', 'Drifted'], ['unreachable', 'Unreachable']]],
];

function readChecks(params) {
  const out = {};
  for (const [name, , choices] of CHECKS) {
    const value = params.get(name) ?? '';
    out[name] = choices.some(([v]) => v === value) ? value : '';
  }
  return out;
}

function checksForm(checks) {
  const form = h('form', { class: 'panel', id: 'checks-form', 'aria-label': 'Filter by card checks' },
    h('div', { class: 'row' },
      CHECKS.map(([name, label, choices]) => select(`check-${name}`, label, choices, checks[name])),
      h('div', { class: 'field' }, h('span', { class: 'label-space', 'aria-hidden': 'true' }, ' '),
        h('button', { type: 'submit', id: 'checks-button' }, 'Show'))),
    h('p', { class: 'hint' }, 'Validation and signature are recorded with registrations\' cards; health covers the watched agents, instances too.'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const p = new URLSearchParams();
    for (const [name] of CHECKS) {
      const value = form.querySelector(`#check-${name}`).value;
      if (value) p.set(name, value);
    }
    const text = p.toString();
    location.hash = text ? `#/registrations?${text}` : '#/registrations';
  });
  return form;
}

/** Renders the list; `alive()` is false once the reader went elsewhere. */
export function renderRegistrations(main, params, { alive, flash }) {
  const checks = readChecks(params);
  const results = h('section', { id: 'results', 'aria-label': 'Registrations', 'aria-busy': 'true' },
    loading('Loading registrations…'));
  fill(main, h('h1', { tabindex: '-1' }, 'Registrations'),
    h('p', { class: 'muted' }, 'Agent 365 agent registrations, with their A2A cards.'),
    flash ? h('p', { class: 'notice', role: 'status' }, flash) : null,
    checksForm(checks),
    results);
  if (Object.values(checks).some(Boolean)) {
    listChecked(results, checks, { alive });
    return;
  }
  pagedList(results, {
    alive,
    first: { target: `${SET}${query([['$count', 'true'], ['$top', 25], ['$orderby', 'displayName'],
      ['$select', 'id,displayName,description,sourceLastModifiedDateTime,sourceAgentId']])}` },
    id: 'registrations',
    countId: 'registration-count',
    noun: ['registration', 'registrations'],
    columns: [['Name'], ['Description'], ['Last modified', 'modified']],
    row: (r) => [
      nameCell(`#/registrations/${encodeURIComponent(r.id)}`, r.displayName, r.id),
      h('td', { class: 'description' }, r.description || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'modified' }, when(r.sourceLastModifiedDateTime)),
    ],
    empty: 'There are no agent registrations in this tenant yet.',
    failed: 'The registrations could not be listed',
  });
}

/** What a check recorded, in a few words. */
function validationText(v) {
  if (!v) return h('span', { class: 'muted' }, 'not checked');
  return v.valid ? 'valid' : `${(v.problems ?? []).length} problem(s)`;
}

/**
 * The agents whose card checks match, from the control plane, which needs
 * Agentry.Admin; paged by following its nextLink.
 */
function listChecked(results, checks, { alive }) {
  const verdict = allows('Control');
  if (!verdict.ok) {
    fill(results, h('p', { class: 'unavailable', id: 'checks-needs' },
      `Filtering by card checks reads Agentry's control plane, which needs ${verdict.needs}.`));
    results.setAttribute('aria-busy', 'false');
    return;
  }
  pagedList(results, {
    alive,
    first: { target: `/_agentry/a2a/agents${query([...CHECKS.map(([name]) => [name, checks[name]]), ['top', 25]])}` },
    id: 'checked',
    countId: 'registration-count',
    nextOf: (json) => json.nextLink,
    noun: ['agent', 'agents by card checks'],
    columns: [['Agent', 'name'], ['Validation'], ['Signature'], ['Health']],
    row: (a) => {
      const registration = a.kind === 'agentRegistration';
      return [
        nameCell(`#/${registration ? 'registrations' : 'agents'}/${encodeURIComponent(a.id)}`, a.id,
          registration ? 'registration' : 'agent instance'),
        h('td', null, validationText(a.cardValidation)),
        h('td', null, a.cardSignature?.result ?? h('span', { class: 'muted' }, 'not checked')),
        h('td', null, a.health?.state ?? h('span', { class: 'muted' }, 'not watched')),
      ];
    },
    empty: 'No agent matches.',
    failed: 'The card checks could not be listed',
  });
}

/** Renders the registration `id`; `leave(message)` goes back to the list. */
export function renderRegistration(main, id, { alive, leave }) {
  const back = h('p', { class: 'crumbs' }, h('a', { href: '#/registrations' }, '← All registrations'));
  fill(main, back, h('h1', { tabindex: '-1' }, 'Registration'), loading('Loading the registration…'));
  load();

  async function load() {
    let one;
    try {
      one = await call('GET', `${SET}/${key(id)}`);
    } catch (error) {
      if (!alive()) return;
      fill(main, back, h('h1', { tabindex: '-1' }, 'Registration'),
        errorBox(error, error.status === 404 ? 'This registration does not exist (any more)' : 'The registration could not be read'));
      return;
    }
    if (!alive()) return;
    show(one.json, one.etag);
  }

  function show(r, etag) {
    const status = h('div', { id: 'action-status' });
    const verdict = allows('DeleteRegistration');
    const remove = h('button', { type: 'button', id: 'delete', class: 'danger' }, 'Delete');
    if (!verdict.ok) {
      remove.disabled = true;
      remove.title = `Needs ${verdict.needs}`;
    } else {
      remove.addEventListener('click', () => confirmDelete());
    }
    fill(main,
      back,
      h('h1', { tabindex: '-1', id: 'registration-name' }, r.displayName || r.id),
      h('p', { class: 'muted' }, 'Id ', h('code', { id: 'registration-id' }, r.id)),
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, remove),
      verdict.ok ? null : h('ul', { class: 'unavailable' }, h('li', null, `Delete: needs ${verdict.needs}.`)),
      status,
      h('section', { 'aria-labelledby': 'details-heading' },
        h('h2', { id: 'details-heading' }, 'Details'),
        facts([
          ['Description', orNone(r.description)],
          ['Owners', orNone(r.ownerIds)],
          ['Managed by app', orNone(r.managedByAppId)],
          ['Source agent id', orNone(r.sourceAgentId)],
          ['Agent identity', orNone(r.agentIdentityId)],
          ['Created at the source', when(r.sourceCreatedDateTime)],
          ['Created by', orNone(r.createdBy)],
          ['Last modified at the source', when(r.sourceLastModifiedDateTime)],
          ['Last published by', orNone(r.lastPublishedBy)],
          ['ETag', h('code', null, etag || '—')],
        ])),
      checks(r),
      a2aCard(r.agentCard),
      h('section', { 'aria-labelledby': 'raw-heading' },
        h('h2', { id: 'raw-heading' }, 'Raw JSON'),
        h('details', null,
          h('summary', null, 'The registration as Graph returns it'),
          h('pre', { id: 'raw-json', tabindex: '0' }, JSON.stringify(r, null, 2)))));

    function confirmDelete() {
      const name = r.displayName || r.id;
      askToDelete({
        title: `Delete ${name}?`,
        text: 'The registration and its card are deleted. This cannot be undone.',
        remove: () => call('DELETE', `${SET}/${key(id)}`, { etag }),
        done: () => leave(`Deleted ${name}.`),
        failed: 'The registration was not deleted',
        returnTo: remove,
      });
    }
  }
}

/** Validation, signature and health, as the registration's annotations say. */
function checks(r) {
  const validation = r['@agentry.cardValidation'];
  const signature = r['@agentry.cardSignature'];
  const health = r['@agentry.health'];
  if (!validation && !signature && !health) return null;
  const badge = (ok, text, id) => h('span', { class: `badge ${ok ? 'ok' : 'warn'}`, id }, text);
  const rows = [];
  if (validation) {
    const problems = validation.problems ?? [];
    rows.push(['Card validation', validation.valid
      ? badge(true, `valid A2A ${validation.version} card`, 'validation')
      : [badge(false, `${problems.length} problem(s)`, 'validation'),
        h('ul', { class: 'problems' }, problems.map((p) => h('li', null, h('code', null, p.pointer || '/'), ' ', p.message)))]]);
  }
  if (signature) {
    const text = signature.result === 'verified'
      ? `verified with key ${signature.kid} (${signature.form})`
      : signature.result;
    rows.push(['Signature', badge(signature.result === 'verified', text, 'signature')]);
  }
  if (health) {
    rows.push(['Health', badge(health.state === 'healthy', health.state ?? 'unknown', 'health')]);
    if (health.error) rows.push(['Why', health.error]);
    if ((health.differences ?? []).length) {
      rows.push(['Changed', h('ul', { class: 'problems' },
        health.differences.map((d) => h('li', null, h('code', null, d.pointer), ` ${d.change}`)))]);
    }
    rows.push(['Last checked', when(health.checkedDateTime)]);
    rows.push(['In this state since', when(health.changedDateTime)]);
  }
  return h('section', { 'aria-labelledby': 'checks-heading', id: 'checks' },
    h('h2', { id: 'checks-heading' }, 'Card checks'),
    facts(rows));
}

/** An A2A card (v1.0 or v0.3), for people. */
function a2aCard(card) {
  if (!card || typeof card !== 'object') {
    return h('section', { 'aria-labelledby': 'card-heading' },
      h('h2', { id: 'card-heading' }, 'Agent card'),
      h('p', { class: 'muted', id: 'no-card' }, 'This registration has no agent card.'));
  }
  const interfaces = Array.isArray(card.supportedInterfaces)
    ? card.supportedInterfaces.map((i) => [`${i.protocolBinding || 'Interface'} ${i.protocolVersion || ''}`.trim(), i.url])
    : [[card.preferredTransport || 'Preferred', card.url],
      ...(card.additionalInterfaces ?? []).map((i) => [i.transport || 'Interface', i.url])].filter(([, url]) => url);
  const caps = card.capabilities ?? {};
  const yes = (v) => (v === true ? 'yes' : v === false ? 'no' : h('span', { class: 'muted' }, '—'));
  const schemes = Object.keys(card.securitySchemes ?? {});
  const skills = card.skills ?? [];
  return h('section', { 'aria-labelledby': 'card-heading', id: 'card' },
    h('h2', { id: 'card-heading' }, 'Agent card'),
    card.description ? h('p', { id: 'card-description' }, card.description) : null,
    h('div', { class: 'two' },
      facts([
        ['Card name', orNone(card.name)],
        ['Version', orNone(card.version)],
        ['A2A version', Array.isArray(card.supportedInterfaces) ? '1.0' : orNone(card.protocolVersion)],
        ['Provider', card.provider ? `${card.provider.organization || ''} ${card.provider.url || ''}`.trim() : orNone(null)],
        ['Signatures', String((card.signatures ?? []).length)],
      ]),
      facts([
        ['Streaming', yes(caps.streaming)],
        ['Push notifications', yes(caps.pushNotifications)],
        ['Input modes', orNone(card.defaultInputModes)],
        ['Output modes', orNone(card.defaultOutputModes)],
        ['Security schemes', orNone(schemes)],
      ])),
    h('h3', null, 'Interfaces'),
    interfaces.length
      ? facts(interfaces.map(([t, url]) => [t, h('code', null, url)]), { id: 'interfaces' })
      : h('p', { class: 'muted' }, 'No interface URL.'),
    h('h3', null, `Skills (${skills.length})`),
    skills.length === 0
      ? h('p', { class: 'muted' }, 'No skills.')
      : h('ul', { class: 'skills', id: 'skills' }, skills.map((s) => h('li', null,
        h('h3', null, s.name || s.id || 'Skill'),
        s.description ? h('p', null, s.description) : null,
        (s.tags ?? []).length ? h('ul', { class: 'chips', 'aria-label': 'Tags' }, s.tags.map((t) => h('li', null, t))) : null,
        (s.examples ?? []).length
          ? [h('p', { class: 'hint' }, 'Examples'), h('ul', { class: 'examples' }, s.examples.map((e) => h('li', null, e)))]
          : null))));
}
