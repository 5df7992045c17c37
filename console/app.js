// The console's frame: the views by URL fragment (#/agents, #/agents/{id},
// #/registrations, #/registrations/{id}, #/copilot, #/activity, and the
// developer tools #/developer, #/developer/faults, #/developer/data, and the
// registry views of registry.js: #/manifests, #/collections, #/packages),
// the top bar with who is signed in, and signing out. Each view is a module
// that fills <main>; a view that finishes loading after the reader moved on
// drops its result (`alive()`).

import { h, fill, errorBox, announce, loading } from './dom.js';
import { whenUnauthorized, redeemCode } from './graph.js';
import {
  token, signIn, signOut, caller, loadPermissions, signInAnswer, loadSignInConfig, CLIENT_ID, redirectUri,
} from './session.js';
import { renderSignIn } from './signin.js';
import { renderAgents } from './agents.js';
import { renderAgent } from './agent.js';
import { renderActivity } from './activity.js';
import { renderCopilot } from './copilot.js';
import { renderRegistrations, renderRegistration } from './registrations.js';
import { renderRequests, renderFaults, renderData } from './developer.js';
import { registryView } from './registry.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let generation = 0;
/** Why the last token stopped working, shown on the sign-in page. */
let signedOutBecause = null;
/** A message for the next view (after a delete). */
let flash = null;
/** The list the reader came from, for "All agents". */
let lastList = '#/agents';

whenUnauthorized((error) => {
  signOut();
  signedOutBecause = error;
  route();
});

function showCaller() {
  const c = caller();
  nav.hidden = !c;
  if (!c) {
    fill(who);
    return;
  }
  const out = h('button', { type: 'button', class: 'button', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', () => {
    signOut();
    signedOutBecause = null;
    location.hash = '#/agents';
    route();
  });
  fill(who,
    h('span', { id: 'signed-in-as', title: c.name },
      h('span', { class: 'visually-hidden' }, c.delegated ? 'Signed in as ' : 'Application '), c.name),
    c.tenant ? h('span', { class: 'visually-hidden' }, ` in tenant ${c.tenant}`) : null,
    out);
}

function focusHeading() {
  const heading = main.querySelector('h1');
  (heading ?? main).focus({ preventScroll: false });
}

async function route() {
  const mine = ++generation;
  const alive = () => mine === generation;
  showCaller();
  if (!token()) {
    document.title = 'Sign in · Agentry console';
    let config;
    try {
      config = await loadSignInConfig();
    } catch {
      config = { external: null, localUsers: true, devSignIn: false };
    }
    if (!alive()) return;
    renderSignIn(main, {
      config,
      reason: signedOutBecause,
      done: () => { signedOutBecause = null; route(); },
    });
    focusHeading();
    return;
  }
  try {
    await loadPermissions();
  } catch (error) {
    if (!alive()) return;
    fill(main, h('h1', { tabindex: '-1' }, 'Agentry console'),
      errorBox({ message: `The console could not load: ${error.message}.` }));
    return;
  }
  if (!alive()) return;
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/agents';
  const [path, search] = hash.split('?');
  const parts = path.split('/').filter(Boolean);
  const message = flash;
  flash = null;
  for (const link of nav.querySelectorAll('a')) {
    link.toggleAttribute('aria-current', false);
  }
  if (parts[0] === 'agents' && parts.length === 1) {
    lastList = `#${hash}`;
    nav.querySelector('#nav-agents').setAttribute('aria-current', 'page');
    document.title = 'Agents · Agentry console';
    renderAgents(main, new URLSearchParams(search ?? ''), { alive, flash: message });
  } else if (parts[0] === 'agents' && parts.length === 2) {
    let id;
    try {
      id = decodeURIComponent(parts[1]);
    } catch {
      id = parts[1];
    }
    document.title = 'Agent · Agentry console';
    renderAgent(main, id, {
      alive,
      backHash: lastList,
      leave: (text) => {
        flash = text;
        location.hash = lastList;
      },
    });
  } else if (parts[0] === 'registrations' && parts.length === 1) {
    nav.querySelector('#nav-registrations').setAttribute('aria-current', 'page');
    document.title = 'Registrations · Agentry console';
    renderRegistrations(main, new URLSearchParams(search ?? ''), { alive, flash: message });
  } else if (parts[0] === 'registrations' && parts.length === 2) {
    let id;
    try {
      id = decodeURIComponent(parts[1]);
    } catch {
      id = parts[1];
    }
    document.title = 'Registration · Agentry console';
    renderRegistration(main, id, {
      alive,
      leave: (text) => {
        flash = text;
        location.hash = '#/registrations';
      },
    });
  } else if (registryView(parts, search, { main, nav, alive, flash: message, leave: (text, to) => { flash = text; location.hash = to; } })) {
    // A manifest, collection or package view.
  } else if (parts[0] === 'copilot' && parts.length === 1) {
    nav.querySelector('#nav-copilot').setAttribute('aria-current', 'page');
    document.title = 'Copilot settings · Agentry console';
    renderCopilot(main, { alive });
  } else if (parts[0] === 'activity' && parts.length === 1) {
    nav.querySelector('#nav-activity').setAttribute('aria-current', 'page');
    document.title = 'Activity · Agentry console';
    renderActivity(main, new URLSearchParams(search ?? ''), { alive });
  } else if (parts[0] === 'developer' && parts.length <= 2) {
    nav.querySelector('#nav-developer').setAttribute('aria-current', 'page');
    const tool = parts[1] ?? 'requests';
    if (tool === 'requests') {
      document.title = 'Requests · Agentry console';
      renderRequests(main, new URLSearchParams(search ?? ''), { alive });
    } else if (tool === 'faults') {
      document.title = 'Fault rules · Agentry console';
      renderFaults(main, { alive });
    } else if (tool === 'data') {
      document.title = 'Reset and snapshots · Agentry console';
      renderData(main);
    } else {
      notFound();
    }
  } else {
    notFound();
  }
  focusHeading();
}

function notFound() {
  document.title = 'Not found · Agentry console';
  fill(main, h('h1', { tabindex: '-1' }, 'Nothing here'),
    h('p', null, 'The console has no such view. ', h('a', { href: '#/agents' }, 'See the agents.')));
}

/**
 * Back from the identity provider's sign-in page (`/console/?code=…&state=…`):
 * the code is redeemed for a token, and the URL loses the code.
 */
async function finishSignIn() {
  const answer = signInAnswer();
  if (!answer) return;
  history.replaceState(null, '', '/console/#/agents');
  if (answer.problem) {
    signedOutBecause = { title: 'Signing in did not work', message: answer.problem };
    return;
  }
  fill(main, loading('Signing in…'));
  try {
    const external = answer.external ? (await loadSignInConfig()).external : null;
    if (answer.external && !external) throw new Error('This server no longer signs in at an external issuer.');
    const session = await redeemCode(external
      ? {
        endpoint: external.tokenEndpoint, scope: external.scope, code: answer.code, verifier: answer.verifier,
        clientId: external.clientId, redirectUri: redirectUri(),
      }
      : {
        tenant: answer.tenant, code: answer.code, verifier: answer.verifier,
        clientId: CLIENT_ID, redirectUri: redirectUri(),
      });
    const problem = signIn(session.access_token);
    if (problem) throw new Error(problem);
    announce(`Signed in as ${caller()?.name ?? 'a user'}.`);
  } catch (error) {
    error.title = 'Signing in did not work';
    signedOutBecause = error;
  }
}

window.addEventListener('hashchange', route);
finishSignIn().then(route);
