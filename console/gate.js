// Buttons the token may not be allowed to use: from the permission table
// (/console/permissions.json), disabled and saying what they need.

import { h } from './dom.js';
import { allows } from './session.js';

/**
 * A button for `rules` ([action, reserved] pairs, all needed): enabled with
 * `onClick`, or disabled, its title naming what is missing and a line added
 * to `unavailable` (an array, shown with `unavailableList`).
 */
export function gated(label, attrs, rules, onClick, unavailable) {
  const refused = rules.map(([name, reserved]) => allows(name, reserved)).find((v) => !v.ok);
  const button = h('button', { type: 'button', ...attrs }, label);
  if (refused) {
    button.disabled = true;
    button.title = `Needs ${refused.needs}`;
    unavailable?.push(`${label}: needs ${refused.needs}.`);
  } else if (onClick) {
    button.addEventListener('click', onClick);
  }
  return button;
}

/** The list of what the disabled buttons need, or nothing. */
export function unavailableList(unavailable, id = 'unavailable') {
  return unavailable.length
    ? h('ul', { class: 'unavailable', id }, unavailable.map((u) => h('li', null, u)))
    : null;
}
