// A card manifest rendered for people, shared by the agent and the
// manifest views.

import { h, orNone, facts } from './dom.js';

/**
 * An agent card manifest, for people: description, provider, version,
 * capabilities, modes, security schemes and each skill with its tags and
 * examples. `none` is what to say when there is no manifest.
 */
export function manifestCard(manifest, none = 'This agent has no card manifest.') {
  if (!manifest) {
    return h('section', { 'aria-labelledby': 'card-heading' },
      h('h2', { id: 'card-heading' }, 'Agent card'),
      h('p', { class: 'muted', id: 'no-card' }, none));
  }
  const caps = manifest.capabilities ?? {};
  const yes = (v) => (v === true ? 'yes' : v === false ? 'no' : h('span', { class: 'muted' }, '—'));
  const provider = manifest.provider
    ? [manifest.provider.organization || '', manifest.provider.url ? [' ', h('code', null, manifest.provider.url)] : '']
    : h('span', { class: 'muted' }, '—');
  const schemes = Object.entries(manifest.securitySchemes ?? {});
  const skills = manifest.skills ?? [];
  return h('section', { 'aria-labelledby': 'card-heading', id: 'card' },
    h('h2', { id: 'card-heading' }, 'Agent card'),
    manifest.description ? h('p', { id: 'card-description' }, manifest.description) : null,
    h('div', { class: 'two' },
      facts([
        ['Card name', orNone(manifest.displayName)],
        ['Manifest id', h('code', null, manifest.id)],
        ['Version', orNone(manifest.version)],
        ['Protocol version', orNone(manifest.protocolVersion)],
        ['Provider', provider],
        ['Documentation', manifest.documentationUrl ? h('code', null, manifest.documentationUrl) : orNone(null)],
      ]),
      facts([
        ['Streaming', yes(caps.streaming)],
        ['Push notifications', yes(caps.pushNotifications)],
        ['State history', yes(caps.stateTransitionHistory)],
        ['Extensions', orNone((caps.extensions ?? []).map((e) => e.uri))],
        ['Input modes', orNone(manifest.defaultInputModes)],
        ['Output modes', orNone(manifest.defaultOutputModes)],
        ['Security schemes', schemes.length
          ? schemes.map(([name, s]) => `${name} (${(s && s.type) || 'scheme'})`).join(', ')
          : orNone(null)],
      ], { id: 'capabilities' })),
    h('h3', null, `Skills (${skills.length})`),
    skills.length === 0
      ? h('p', { class: 'muted' }, 'No skills.')
      : h('ul', { class: 'skills', id: 'skills' }, skills.map((s) => h('li', null,
        h('h3', null, s.displayName || s.id || 'Skill'),
        s.description ? h('p', null, s.description) : null,
        (s.tags ?? []).length ? h('ul', { class: 'chips', 'aria-label': 'Tags' }, s.tags.map((t) => h('li', null, t))) : null,
        (s.examples ?? []).length
          ? [h('p', { class: 'hint' }, 'Examples'), h('ul', { class: 'examples' }, s.examples.map((e) => h('li', null, e)))]
          : null,
        (s.inputModes ?? []).length || (s.outputModes ?? []).length
          ? h('p', { class: 'hint' }, `In: ${(s.inputModes ?? []).join(', ') || '—'} · Out: ${(s.outputModes ?? []).join(', ') || '—'}`)
          : null))));
}
