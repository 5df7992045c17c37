// What links an agent to the rest of the registry, in the agent view: its
// card manifest (bound with `agentCardManifest@odata.bind`, unlinked with
// DELETE …/agentCardManifest) and its collections (members/$ref).

import { h, fill, errorBox, loading, announce } from './dom.js';
import { call, key, query } from './graph.js';
import { gated, unavailableList } from './gate.js';
import { GLOBAL, QUARANTINED } from './agents.js';

/** Which reserved collection `id` is, as the permission table names them. */
export function reservedName(id) {
  return id === GLOBAL ? 'Global' : id === QUARANTINED ? 'Quarantined' : 'No';
}

/** An `@odata.id` or `@odata.bind` URL of this server for an entity. */
export function entityUrl(set, id) {
  return `${location.origin}/beta/agentRegistry/${set}('${String(id).replace(/'/g, "''")}')`;
}

/** Adds `agentId` to the collection `collectionId` (on) or removes it. */
export function setMembership(collectionId, agentId, on) {
  const members = `/agentRegistry/agentCollections/${key(collectionId)}/members`;
  return on
    ? call('POST', `${members}/$ref`, { body: { '@odata.id': entityUrl('agentInstances', agentId) } })
    : call('DELETE', `${members}/${key(agentId)}/$ref`);
}

/**
 * The agent's collections, each with a Remove button, and a form to add it
 * to another; `reload(notice)` shows the agent again after a change.
 */
export function membershipPanel(agent, memberOf, { alive, reload }) {
  const status = h('div', { id: 'membership-status' });
  const unavailable = [];
  const change = async (button, collection, on) => {
    button.disabled = true;
    const name = collection.displayName || collection.id;
    fill(status, loading(on ? 'Adding…' : 'Removing…'));
    try {
      await setMembership(collection.id, agent.id, on);
      if (!alive()) return;
      announce(on ? `Added to ${name}.` : `Removed from ${name}.`);
      await reload(on ? `Added to the collection ${name}.` : `Removed from the collection ${name}.`);
    } catch (error) {
      if (!alive()) return;
      button.disabled = false;
      fill(status, errorBox(error, on ? `The agent was not added to ${name}` : `The agent was not removed from ${name}`));
    }
  };
  const list = memberOf.length === 0
    ? h('p', { class: 'muted' }, 'In no collection.')
    : h('ul', { id: 'collections', class: 'members' }, memberOf.map((c) => {
      const name = c.displayName || c.id;
      const button = gated('Remove', { class: 'small', 'aria-label': `Remove from ${name}`, 'data-collection': c.id },
        [['RemoveMember', reservedName(c.id)]], () => change(button, c, false), unavailable);
      return h('li', null, h('a', { href: `#/collections/${encodeURIComponent(c.id)}` }, name), ' ', button);
    }));
  const choice = h('select', { id: 'add-collection', name: 'collection' }, h('option', { value: '' }, 'Choose a collection'));
  const add = gated('Add', { id: 'add-to-collection' }, [['AddMember']], null, unavailable);
  const form = h('form', { class: 'inline', id: 'membership-form' },
    h('div', { class: 'field' }, h('label', { for: 'add-collection' }, 'Add to a collection'), choice), add);
  add.type = 'submit';
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const picked = choice.selectedOptions[0];
    if (add.disabled || !picked || !picked.value) return;
    change(add, { id: picked.value, displayName: picked.textContent }, true);
  });
  call('GET', `/agentRegistry/agentCollections${query([['$select', 'id,displayName'], ['$top', 100], ['$orderby', 'displayName']])}`)
    .then(({ json }) => {
      if (!alive()) return;
      for (const c of json.value ?? []) {
        if (memberOf.some((m) => m.id === c.id)) continue;
        choice.append(h('option', { value: c.id }, c.displayName || c.id));
      }
    })
    .catch((error) => { if (alive()) fill(status, errorBox(error, 'The collections to add to could not be listed')); });
  return [list, form, unavailableList([...new Set(unavailable)], 'membership-unavailable'), status];
}

/**
 * The agent's card manifest: a link to its view, Unlink, and a form to
 * link another one by id (with the agent's ETag, as any edit).
 */
export function manifestPanel(agent, etag, { alive, reload }) {
  const manifest = agent.agentCardManifest ?? null;
  const status = h('div', { id: 'manifest-status' });
  const unavailable = [];
  const run = async (button, work, busy, done, failed) => {
    button.disabled = true;
    fill(status, loading(busy));
    try {
      await work();
      if (!alive()) return;
      announce(done);
      await reload(done);
    } catch (error) {
      if (!alive()) return;
      button.disabled = false;
      fill(status, errorBox(error, failed));
    }
  };
  const path = `/agentRegistry/agentInstances/${key(agent.id)}`;
  const unlink = manifest
    ? gated('Unlink', { id: 'unlink-manifest' }, [['UnlinkInstanceManifest']],
      () => run(unlink, () => call('DELETE', `${path}/agentCardManifest`, { etag: manifest['@odata.etag'] }),
        'Unlinking…', 'The manifest was unlinked (it is kept).', 'The manifest was not unlinked'), unavailable)
    : null;
  const input = h('input', { id: 'link-manifest', name: 'manifest', list: 'manifest-choices', autocomplete: 'off', required: true });
  const choices = h('datalist', { id: 'manifest-choices' });
  const link = gated('Link', { id: 'link-button' }, [['UpdateInstance'], ['BindManifest']], null, unavailable);
  link.type = 'submit';
  const form = h('form', { class: 'inline', id: 'link-form' },
    h('div', { class: 'field grow' },
      h('label', { for: 'link-manifest' }, manifest ? 'Link another manifest (its id)' : 'Link a manifest (its id)'),
      input, choices),
    link);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (link.disabled || !id) return;
    run(link, () => call('PATCH', path, { etag, body: { 'agentCardManifest@odata.bind': entityUrl('agentCardManifests', id) } }),
      'Linking…', `Linked to the manifest ${id}.`,
      'The manifest was not linked');
  });
  call('GET', `/agentRegistry/agentCardManifests${query([['$select', 'id,displayName'], ['$top', 100], ['$orderby', 'displayName']])}`)
    .then(({ json }) => {
      if (!alive()) return;
      for (const m of json.value ?? []) choices.append(h('option', { value: m.id }, m.displayName || m.id));
    })
    .catch(() => {});
  return h('section', { 'aria-labelledby': 'manifest-heading', id: 'manifest-link' },
    h('h2', { id: 'manifest-heading' }, 'Card manifest'),
    manifest
      ? h('p', null, 'Linked to ', h('a', { href: `#/manifests/${encodeURIComponent(manifest.id)}`, id: 'linked-manifest' },
        manifest.displayName || manifest.id), ' ', h('code', null, manifest.id), ' ', unlink)
      : h('p', { class: 'muted', id: 'linked-manifest' }, 'No manifest is linked.'),
    form,
    unavailableList(unavailable, 'manifest-unavailable'),
    status);
}
