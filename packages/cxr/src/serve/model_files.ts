// The files a browser needs to run the model itself (each member's model.json and the weight
// shards its manifest names), as a fixed table built at start-up. The route serves only names
// in this table, so no request path is ever joined onto the file system (no traversal).
import * as path from 'node:path';
import { loadOod, OOD_FILE } from '../explain/ood';
import { readWeightsManifest } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { weightFilesOf } from '../models/weights_manifest';

export interface ModelFiles {
  /** URL-relative path of each member's model.json, e.g. 'model.json' or 'fold1/model.json'. */
  members: string[];
  /**
   * URL-relative path of the OOD gate's parameters (ood.json), so that the page gates images as the
   * server does; null when the folder has no ood.json the server itself would use (missing,
   * invalid, or fitted for other weights).
   */
  ood: string | null;
  /** URL-relative path -> absolute file. */
  files: Map<string, string>;
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function safeRelative(rel: string, what: string): string {
  const parts = rel.split('/');
  if (!parts.every((p) => SAFE_SEGMENT.test(p) && p !== '..' && p !== '.')) {
    throw new Error(`model folder: refusing to serve ${what} '${rel}' (only plain relative names are served)`);
  }
  return parts.join('/');
}

export function listModelFiles(dir: string, meta: Pick<ModelMeta, 'members'>): ModelFiles {
  const root = path.resolve(dir);
  const files = new Map<string, string>();
  const members: string[] = [];
  for (const member of meta.members.length ? meta.members : ['']) {
    const prefix = member ? `${safeRelative(member, 'member')}/` : '';
    const jsonRel = `${prefix}model.json`;
    // The one reader of a weight manifest (models/weights_manifest.ts): a model.json without one, or with
    // one that is not TF.js's, is refused naming the file, not served to a browser that cannot load it.
    const manifest = readWeightsManifest(path.join(root, prefix));
    files.set(jsonRel, path.join(root, jsonRel));
    members.push(jsonRel);
    for (const p of weightFilesOf(manifest)) {
      const rel = `${prefix}${safeRelative(p, 'weights file')}`;
      files.set(rel, path.join(root, rel));
    }
  }
  const memberDir = meta.members.length ? path.join(root, meta.members[0]) : root;
  let ood: string | null = null;
  if (loadOod(root, memberDir).model) {
    ood = OOD_FILE;
    files.set(OOD_FILE, path.join(root, OOD_FILE));
  }
  return { members, ood, files };
}
