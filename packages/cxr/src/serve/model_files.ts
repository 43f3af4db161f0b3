// The files a browser needs to run the model itself (each member's model.json and the weight
// shards its manifest names), as a fixed table built at start-up. The route serves only names
// in this table, so no request path is ever joined onto the file system (no traversal).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadOod, OOD_FILE } from '../explain/ood';
import type { ModelMeta } from '../models/metadata';

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

export function listModelFiles(dir: string, meta: ModelMeta): ModelFiles {
  const root = path.resolve(dir);
  const files = new Map<string, string>();
  const members: string[] = [];
  for (const member of meta.members.length ? meta.members : ['']) {
    const prefix = member ? `${safeRelative(member, 'member')}/` : '';
    const jsonRel = `${prefix}model.json`;
    const jsonAbs = path.join(root, jsonRel);
    const json = JSON.parse(fs.readFileSync(jsonAbs, 'utf8')) as { weightsManifest?: { paths: string[] }[] };
    files.set(jsonRel, jsonAbs);
    members.push(jsonRel);
    for (const group of json.weightsManifest ?? []) {
      for (const p of group.paths) {
        const rel = `${prefix}${safeRelative(p, 'weights file')}`;
        files.set(rel, path.join(root, rel));
      }
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
