// The agents view: /beta/agentRegistry/agentInstances (or a collection's
// members) searched with $search, filtered by skill, tag and owner with
// $filter, sorted with $orderby, counted with $count=true and paged by
// following @odata.nextLink. With a health filter, the watched agent
// instances in that state instead, from the control plane
// (/_agentry/a2a/agents?health=…&kind=agentInstance).

import { h, fill, errorBox, loading, when, announce } from './dom.js';
import { call, key, query } from './graph.js';
import { allows } from './session.js';
import { pagedList, nameCell, searchExpression, literal, select, textField as text } from './lists.js';

export const QUARANTINED = '00000000-0000-0000-0000-000000000002';
export const GLOBAL = '00000000-0000-0000-0000-000000000001';

const SORTS = [
  ['name', 'Name, A to Z', 'displayName'],
  ['name-desc', 'Name, Z to A', 'displayName desc'],
  ['modified', 'Recently modified', 'lastModifiedDateTime desc'],
  ['modified-asc', 'Least recently modified', 'lastModifiedDateTime'],
];
const SIZES = [10, 25, 50, 100];
const HEALTH = [['', 'Any'], ['healthy', 'Healthy'], ['drifted', 'Drifted'], ['unreachable', 'Unreachable']];

/** The list's options from the hash's query (`#/agents?q=…&sort=…`). */
export function readOptions(params) {
  const sort = SORTS.some(([id]) => id === params.get('sort')) ? params.get('sort') : 'name';
  const top = SIZES.includes(Number(params.get('top'))) ? Number(params.get('top')) : 25;
  return {
    q: params.get('q') ?? '', sort, collection: params.get('collection') ?? '', top,
    skill: params.get('skill') ?? '', tag: params.get('tag') ?? '', owner: params.get('owner') ?? '',
    health: HEALTH.some(([v]) => v && v === params.get('health')) ? params.get('health') : '',
  };
}

export function optionsHash(o) {
  const p = new URLSearchParams();
  if (o.q) p.set('q', o.q);
  if (o.sort !== 'name') p.set('sort', o.sort);
  if (o.collection) p.set('collection', o.collection);
  if (o.top !== 25) p.set('top', String(o.top));
  for (const name of ['skill', 'tag', 'owner', 'health']) if (o[name]) p.set(name, o[name]);
  const text = p.toString();
  return text ? `#/agents?${text}` : '#/agents';
}

/**
 * The $filter of the skill, tag and owner filters: a skill whose id is
 * the text or whose name contains it, a skill tagged exactly so, an owner's
 * object id.
 */
export function agentFilter(o) {
  const terms = [];
  if (o.skill) {
    terms.push(`agentCardManifest/skills/any(s: s/id eq ${literal(o.skill)} or contains(s/displayName, ${literal(o.skill)}))`);
  }
  if (o.tag) terms.push(`agentCardManifest/skills/any(s: s/tags/any(t: t eq ${literal(o.tag)}))`);
  if (o.owner) terms.push(`ownerIds/any(o: o eq ${literal(o.owner)})`);
  return terms.join(' and ');
}

function firstPage(o) {
  const base = o.collection
    ? `/agentRegistry/agentCollections/${key(o.collection)}/members`
    : '/agentRegistry/agentInstances';
  const search = searchExpression(o.q);
  const orderby = SORTS.find(([id]) => id === o.sort)[2];
  return {
    target: base + query([
      ['$count', 'true'],
      ['$top', o.top],
      ['$orderby', orderby],
      ['$search', search],
      ['$filter', agentFilter(o)],
      ['$select', 'id,displayName,lastModifiedDateTime,originatingStore'],
      ['$expand', 'agentCardManifest($select=id,description)'],
    ]),
    eventual: search !== '',
  };
}

/** Renders the view; `alive()` is false once the reader went elsewhere. */
export function renderAgents(main, params, { alive, flash }) {
  const o = readOptions(params);
  const searchInput = h('input', {
    type: 'search', id: 'search', name: 'q', value: o.q, autocomplete: 'off',
    'aria-describedby': 'search-help',
  });
  const collectionSelect = select('collection', 'Collection', [['', 'All agents'], [QUARANTINED, 'Quarantined'], [GLOBAL, 'Global']], o.collection);
  const form = h('form', { class: 'panel', role: 'search', id: 'agents-form', 'aria-label': 'Find agents' },
    h('div', { class: 'row' },
      h('div', { class: 'field grow' },
        h('label', { for: 'search' }, 'Search'),
        searchInput),
      select('sort', 'Sort by', SORTS.map(([id, text]) => [id, text]), o.sort),
      collectionSelect,
      select('top', 'Per page', SIZES.map((n) => [n, String(n)]), o.top),
      h('button', { type: 'submit', class: 'primary', id: 'search-button' }, 'Search')),
    h('div', { class: 'row' },
      text('skill', 'Skill (id or part of its name)', o.skill),
      text('tag', 'Skill tag', o.tag),
      text('owner', 'Owner (object id)', o.owner),
      select('health', 'Health', HEALTH, o.health)),
    h('p', { class: 'hint', id: 'search-help' },
      'Finds agents whose name has a word starting with each word you type.'));
  const submit = (event) => {
    event?.preventDefault();
    const data = new FormData(form);
    const next = optionsHash({
      q: String(data.get('q') ?? '').trim(),
      sort: String(data.get('sort')),
      collection: String(data.get('collection')),
      top: Number(data.get('top')),
      skill: String(data.get('skill') ?? '').trim(),
      tag: String(data.get('tag') ?? '').trim(),
      owner: String(data.get('owner') ?? '').trim(),
      health: String(data.get('health') ?? ''),
    });
    if (location.hash === next) start();
    else location.hash = next;
  };
  form.addEventListener('submit', submit);
  for (const id of ['sort', 'collection', 'top', 'health']) {
    form.querySelector(`#${id}`).addEventListener('change', () => submit());
  }

  const results = h('section', { id: 'results', 'aria-labelledby': 'results-heading', 'aria-busy': 'false' });
  fill(main,
    h('h1', { tabindex: '-1' }, 'Agents'),
    flash ? h('p', { class: 'notice', role: 'status' }, flash) : null,
    form,
    results);

  // The other collections, for the filter; the list works without them.
  call('GET', `/agentRegistry/agentCollections${query([['$select', 'id,displayName'], ['$top', 100], ['$orderby', 'displayName']])}`)
    .then(({ json }) => {
      if (!alive()) return;
      const menu = collectionSelect.querySelector('select');
      for (const c of json.value ?? []) {
        if (c.id === QUARANTINED || c.id === GLOBAL) continue;
        menu.append(h('option', { value: c.id, selected: c.id === o.collection }, c.displayName || c.id));
      }
    })
    .catch(() => {});

  // Pages already seen, for "Previous": the link of each.
  const pages = [];
  async function load(page, number) {
    results.setAttribute('aria-busy', 'true');
    fill(results, h('h2', { id: 'results-heading', class: 'visually-hidden' }, 'Results'), loading('Loading agents…'));
    try {
      const { json } = await call('GET', page.target, { eventual: page.eventual });
      if (!alive()) return;
      pages[number - 1] = page;
      show(json, number);
    } catch (error) {
      if (!alive()) return;
      fill(results,
        h('h2', { id: 'results-heading', class: 'visually-hidden' }, 'Results'),
        errorBox(error, 'The agents could not be listed'));
    } finally {
      results.setAttribute('aria-busy', 'false');
    }
  }

  function show(json, number) {
    const agents = json.value ?? [];
    const total = json['@odata.count'];
    const first = (number - 1) * o.top + 1;
    const countText = typeof total === 'number'
      ? `${total} ${total === 1 ? 'agent' : 'agents'}`
      : `${agents.length} on this page`;
    const range = agents.length ? ` (showing ${first}–${first + agents.length - 1})` : '';
    announce(`${countText} found.`);
    if (agents.length === 0) {
      fill(results,
        h('h2', { id: 'results-heading', class: 'count' }, h('span', { id: 'agent-count' }, countText)),
        h('p', { class: 'muted', id: 'empty' },
          o.q || o.collection || agentFilter(o) ? 'No agent matches. Try other words, or all agents.' : 'There are no agents in this tenant yet.'));
      return;
    }
    const rows = agents.map((a) => h('tr', null,
      h('td', { class: 'name' },
        h('a', { href: `#/agents/${encodeURIComponent(a.id)}` }, a.displayName || a.id),
        h('span', { class: 'id' }, a.id)),
      h('td', { class: 'description' }, a.agentCardManifest?.description || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'modified' }, when(a.lastModifiedDateTime)),
      h('td', { class: 'store' }, a.originatingStore || h('span', { class: 'muted' }, '—'))));
    const next = json['@odata.nextLink'];
    const previous = h('button', { type: 'button', id: 'previous-page', disabled: number === 1 }, 'Previous page');
    previous.addEventListener('click', () => load(pages[number - 2], number - 1));
    const nextButton = h('button', { type: 'button', id: 'next-page', disabled: !next }, 'Next page');
    nextButton.addEventListener('click', () => load({ target: next, eventual: pages[0]?.eventual }, number + 1));
    fill(results,
      h('h2', { id: 'results-heading', class: 'count' }, h('span', { id: 'agent-count' }, countText), range),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'agents' },
          h('caption', { class: 'visually-hidden' }, `Agents, page ${number}`),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Name'),
            h('th', { scope: 'col' }, 'Description'),
            h('th', { scope: 'col', class: 'modified' }, 'Last modified'),
            h('th', { scope: 'col', class: 'store' }, 'Store'))),
          h('tbody', null, rows))),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        previous, h('span', { id: 'page-number' }, `Page ${number}`), nextButton));
  }

  /**
   * The watched agent instances in the health state asked for, from the
   * control plane (which needs Agentry.Admin); the other filters do not
   * apply to it.
   */
  function listHealth() {
    results.removeAttribute('aria-labelledby');
    results.setAttribute('aria-label', 'Agents by health');
    const verdict = allows('Control');
    if (!verdict.ok) {
      fill(results, h('p', { class: 'unavailable', id: 'health-needs' },
        `Filtering by health reads Agentry's control plane, which needs ${verdict.needs}.`));
      return;
    }
    pagedList(results, {
      alive,
      first: { target: `/_agentry/a2a/agents${query([['health', o.health], ['kind', 'agentInstance'], ['top', o.top]])}` },
      id: 'agents',
      countId: 'agent-count',
      nextOf: (json) => json.nextLink,
      noun: ['agent', 'agents'],
      columns: [['Agent', 'name'], ['Health'], ['Last checked', 'modified'], ['Why']],
      row: (a) => [
        nameCell(`#/agents/${encodeURIComponent(a.id)}`, a.id, 'agent instance'),
        h('td', null, a.health?.state ?? '—'),
        h('td', { class: 'modified' }, when(a.health?.checkedDateTime)),
        h('td', null, a.health?.error ?? (a.health?.differences?.length
          ? `${a.health.differences.length} difference(s) from the registered card` : '—')),
      ],
      empty: 'No watched agent instance is in this state.',
      failed: 'The agents could not be listed by health',
    });
  }

  function start() {
    if (o.health) listHealth();
    else load(firstPage(o), 1);
  }

  start();
}
