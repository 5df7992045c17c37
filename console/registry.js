// The routes of the registry's other views: #/manifests, #/collections and
// #/packages, each a list and one item by id.

import { renderManifests, renderManifest } from './manifests.js';
import { renderCollections, renderCollection } from './collections.js';
import { renderPackages, renderPackage } from './packages.js';

const VIEWS = {
  manifests: ['Manifests', 'Manifest', renderManifests, renderManifest, true],
  collections: ['Collections', 'Collection', renderCollections, renderCollection, false],
  packages: ['Packages', 'Package', renderPackages, renderPackage, true],
};

/**
 * Shows the view of `parts` (the hash's path) and says true, or says false
 * when the path is not one of these views. `leave(text, hash)` goes to
 * `hash` with a message.
 */
export function registryView(parts, search, { main, nav, alive, flash, leave }) {
  const view = Object.hasOwn(VIEWS, parts[0]) ? VIEWS[parts[0]] : null;
  if (!view || parts.length > 2) return false;
  const [many, one, renderList, renderOne, withOptions] = view;
  if (parts.length === 1) {
    nav.querySelector(`#nav-${parts[0]}`)?.setAttribute('aria-current', 'page');
    document.title = `${many} · Agentry console`;
    const params = new URLSearchParams(search ?? '');
    if (withOptions) renderList(main, params, { alive, flash });
    else renderList(main, { alive, flash });
    return true;
  }
  let id;
  try {
    id = decodeURIComponent(parts[1]);
  } catch {
    id = parts[1];
  }
  document.title = `${one} · Agentry console`;
  renderOne(main, id, { alive, leave: (text) => leave(text, `#/${parts[0]}`) });
  return true;
}
