// The packages views: the Agent 365 catalog, /beta/copilot/admin/catalog/
// packages. The list shows agents by default (as Graph's does); filters on
// what a package holds, its type, host and whether it is blocked go into
// $filter and the URL. One package: its details, block or unblock it,
// reassign it to another owner, its raw JSON.

import { h, fill, errorBox, loading, when, orNone, facts, announce } from './dom.js';
import { call, key, query } from './graph.js';
import { gated, unavailableList } from './gate.js';
import { pagedList, nameCell, searchExpression, literal, select } from './lists.js';

const SET = '/copilot/admin/catalog/packages';
const CONTENTS = [
  ['', 'Agents (the default list)'],
  ['all', 'Every package'],
  ['DeclarativeAgent', 'Declarative agents'],
  ['CustomEngineAgent', 'Custom engine agents'],
  ['Bots', 'Bots'],
  ['MessageExtensions', 'Message extensions'],
  ['StaticTabs', 'Tabs'],
];
const TYPES = [['', 'Any type'], ['microsoft', 'Microsoft'], ['external', 'External'], ['shared', 'Shared'], ['custom', 'Custom']];
const BLOCKED = [['', 'Blocked or not'], ['yes', 'Blocked'], ['no', 'Not blocked']];
const HOSTS = [['', 'Any host'], ['Copilot', 'Copilot'], ['Teams', 'Teams'], ['Outlook', 'Outlook'], ['Office', 'Office']];
const SORTS = [['name', 'Name, A to Z', 'displayName'], ['modified', 'Recently modified', 'lastModifiedDateTime desc']];
const FILTERS = [['contents', CONTENTS], ['type', TYPES], ['blocked', BLOCKED], ['host', HOSTS], ['sort', SORTS]];

/** The list's options from the hash's query, each one of its choices. */
function readOptions(params) {
  const o = { q: params.get('q') ?? '' };
  for (const [name, choices] of FILTERS) {
    const value = params.get(name) ?? '';
    o[name] = choices.some(([v]) => v === value) ? value : choices[0][0];
  }
  return o;
}

/** The $filter of the options, or nothing (Graph's default list of agents). */
export function packageFilter(o) {
  const terms = [];
  if (o.contents === 'all') terms.push('(elementTypes/any() or not elementTypes/any())');
  else if (o.contents) terms.push(`elementTypes/any(e: e eq ${literal(o.contents)})`);
  if (o.type) terms.push(`type eq ${literal(o.type)}`);
  if (o.blocked) terms.push(`isBlocked eq ${o.blocked === 'yes'}`);
  if (o.host) terms.push(`supportedHosts/any(s: s eq ${literal(o.host)})`);
  return terms.join(' and ');
}

/** The list, its filters in the URL (`#/packages?blocked=yes`). */
export function renderPackages(main, params, { alive }) {
  const o = readOptions(params);
  const input = h('input', { type: 'search', id: 'package-search', name: 'q', value: o.q, autocomplete: 'off' });
  const form = h('form', { class: 'panel', role: 'search', id: 'packages-form', 'aria-label': 'Find packages' },
    h('div', { class: 'row' },
      h('div', { class: 'field grow' }, h('label', { for: 'package-search' }, 'Search'), input),
      select('package-contents', 'Holding', CONTENTS, o.contents),
      select('package-type', 'Type', TYPES, o.type),
      select('package-blocked', 'Blocked', BLOCKED, o.blocked),
      select('package-host', 'Host', HOSTS, o.host),
      select('package-sort', 'Sort by', SORTS.map(([id, text]) => [id, text]), o.sort),
      h('button', { type: 'submit', class: 'primary', id: 'package-search-button' }, 'Search')));
  const submit = (event) => {
    event?.preventDefault();
    const p = new URLSearchParams();
    if (input.value.trim()) p.set('q', input.value.trim());
    for (const [name, choices] of FILTERS) {
      const value = form.querySelector(`#package-${name}`).value;
      if (value !== choices[0][0]) p.set(name, value);
    }
    const next = p.toString() ? `#/packages?${p}` : '#/packages';
    if (location.hash === next) list.reload();
    else location.hash = next;
  };
  form.addEventListener('submit', submit);
  for (const [name] of FILTERS) form.querySelector(`#package-${name}`).addEventListener('change', () => submit());
  const results = h('section', { id: 'results', 'aria-label': 'Packages' });
  fill(main, h('h1', { tabindex: '-1' }, 'Packages'),
    h('p', { class: 'muted' }, 'The Agent 365 catalog: apps and agents available in Microsoft 365 Copilot, which an administrator blocks, unblocks or gives to another owner.'),
    form, results);
  const search = searchExpression(o.q);
  const list = pagedList(results, {
    alive,
    first: {
      target: SET + query([['$count', 'true'], ['$top', 25], ['$orderby', SORTS.find(([id]) => id === o.sort)[2]],
        ['$search', search], ['$filter', packageFilter(o)]]),
      eventual: search !== '',
    },
    id: 'packages',
    noun: ['package', 'packages'],
    columns: [['Name'], ['Description', 'description'], ['Publisher', 'store'], ['Last modified', 'modified']],
    row: (p) => [
      nameCell(`#/packages/${encodeURIComponent(p.id)}`, p.displayName, p.id),
      h('td', { class: 'description' },
        p.isBlocked ? [h('span', { class: 'badge warn' }, 'Blocked'), ' '] : null,
        orNone(p.shortDescription)),
      h('td', { class: 'store' }, orNone(p.publisher)),
      h('td', { class: 'modified' }, when(p.lastModifiedDateTime)),
    ],
    empty: 'No package matches. Packages are loaded through the control plane (POST /_agentry/copilot/packages).',
    failed: 'The packages could not be listed',
  });
}

/** One package, with block, unblock and reassign. */
export function renderPackage(main, id, { alive }) {
  const back = h('p', { class: 'crumbs' }, h('a', { href: '#/packages' }, '← All packages'));
  const path = `${SET}/${key(id)}`;
  fill(main, back, h('h1', { tabindex: '-1' }, 'Package'), loading('Loading the package…'));
  load();

  async function load(notice) {
    let one;
    try {
      one = await call('GET', path);
    } catch (error) {
      if (!alive()) return;
      fill(main, back, h('h1', { tabindex: '-1' }, 'Package'),
        errorBox(error, error.status === 404 ? 'This package does not exist (any more)' : 'The package could not be read'));
      return;
    }
    if (!alive()) return;
    show(one.json, notice);
  }

  function show(p, notice) {
    const unavailable = [];
    const status = h('div', { id: 'action-status' });
    const run = async (button, method, action, body, busy, done, failed) => {
      button.disabled = true;
      fill(status, loading(busy));
      try {
        await call(method, `${path}/${action}`, { body });
        if (!alive()) return;
        announce(done);
        await load(done);
      } catch (error) {
        if (!alive()) return;
        button.disabled = false;
        fill(status, errorBox(error, failed));
      }
    };
    const block = p.isBlocked
      ? gated('Unblock', { id: 'block' }, [['UpdatePackage']],
        () => run(block, 'POST', 'unblock', undefined, 'Unblocking…', 'Unblocked: people may use it again.', 'The package was not unblocked'), unavailable)
      : gated('Block', { id: 'block', class: 'danger' }, [['UpdatePackage']],
        () => run(block, 'POST', 'block', undefined, 'Blocking…', 'Blocked: no one in the tenant may use it.', 'The package was not blocked'), unavailable);
    const owner = h('input', { id: 'reassign-user', name: 'userId', autocomplete: 'off', required: true, 'aria-describedby': 'reassign-hint' });
    const reassign = gated('Reassign', { id: 'reassign' }, [['UpdatePackage']], null, unavailable);
    reassign.type = 'submit';
    const reassignForm = h('form', { class: 'inline', id: 'reassign-form' },
      h('div', { class: 'field grow' }, h('label', { for: 'reassign-user' }, 'Reassign to (user object id)'), owner),
      reassign);
    const reassignHint = h('p', { class: 'hint', id: 'reassign-hint' }, 'The user who owns the package from now on.');
    reassignForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const userId = owner.value.trim();
      if (reassign.disabled || !userId) return;
      run(reassign, 'POST', 'reassign', { userId }, 'Reassigning…', `Reassigned to ${userId}.`, 'The package was not reassigned');
    });
    const people = (list) => orNone((list ?? []).map((e) => `${e.resourceId ?? e.id ?? '?'} (${e.resourceType ?? 'entity'})`));
    fill(main,
      back,
      h('div', { class: 'title-line' },
        h('h1', { tabindex: '-1', id: 'package-name' }, p.displayName || p.id),
        p.isBlocked ? h('span', { class: 'badge warn', id: 'blocked-badge' }, 'Blocked') : null),
      h('p', { class: 'muted' }, 'Id ', h('code', { id: 'package-id' }, p.id)),
      p.longDescription || p.shortDescription ? h('p', { id: 'package-description' }, p.longDescription || p.shortDescription) : null,
      notice ? h('p', { class: 'notice', role: 'status', id: 'notice' }, notice) : null,
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, block),
      reassignForm,
      reassignHint,
      unavailableList([...new Set(unavailable)]),
      status,
      h('div', { class: 'two' },
        h('section', { 'aria-labelledby': 'details-heading' },
          h('h2', { id: 'details-heading' }, 'Details'),
          facts([
            ['Type', orNone(p.type)],
            ['Publisher', orNone(p.publisher)],
            ['Platform', orNone(p.platform)],
            ['Version', orNone(p.version)],
            ['Owner', h('code', { id: 'package-owner' }, p.ownerId || '—')],
            ['Holds', orNone(p.elementTypes)],
            ['Hosts', orNone(p.supportedHosts)],
            ['Categories', orNone(p.categories)],
            ['Sensitivity', orNone(p.sensitivity)],
            ['Created', when(p.createdDateTime)],
            ['Last modified', when(p.lastModifiedDateTime)],
          ], { id: 'package-details' })),
        h('section', { 'aria-labelledby': 'access-heading' },
          h('h2', { id: 'access-heading' }, 'Access and use'),
          facts([
            ['Blocked', p.isBlocked ? 'yes' : 'no'],
            ['Available to', orNone(p.availableTo)],
            ['Allowed', people(p.allowedUsersAndGroups)],
            ['Deployed to', orNone(p.deployedTo)],
            ['Deployed', people(p.acquireUsersAndGroups)],
            ['Shared with', people(p.sharedWithUsersAndGroups)],
            ['Active users', orNone(p.activeUsers)],
            ['Sessions', orNone(p.totalSessions)],
            ['Last used', when(p.lastUsedDateTime)],
          ]))),
      h('section', { 'aria-labelledby': 'raw-heading' },
        h('h2', { id: 'raw-heading' }, 'Raw JSON'),
        h('details', null,
          h('summary', null, 'The package as Graph returns it'),
          h('pre', { id: 'raw-json', tabindex: '0' }, JSON.stringify(p, null, 2)))));
  }
}
