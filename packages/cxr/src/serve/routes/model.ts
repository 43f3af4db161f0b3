// The served model: its facts, metrics and card, and its files for running it in the browser.
import type { FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HttpError } from '../http_error';
import { listModelFiles } from '../model_files';
import type { ServePredictor } from '../predictor_port';
import { publicCard, publicMeta } from '../public_meta';
import { modelInfoSchema } from '../schemas';
import { API_ERRORS, API_PREFIX, notFound } from './common';

export function modelRoutes(api: FastifyInstance, predictor: ServePredictor): void {
  const meta = predictor.model.meta;
  // Read once at start-up: the model folder does not change while it is served.
  const modelFiles = listModelFiles(predictor.model.dir, meta);
  // Without the folders it was trained from (public_meta.ts): a client needs the model's facts, not its paths.
  const shownMeta = publicMeta(meta);
  const cardPath = path.join(predictor.model.dir, 'MODEL_CARD.md');
  // Its recorded commands' absolute paths reduced as cxr.json's are (public_meta.ts).
  const modelCard = fs.existsSync(cardPath) ? publicCard(fs.readFileSync(cardPath, 'utf8')) : null;

  api.get(
    '/model',
    {
      schema: {
        summary: 'The served model: cxr.json (without local paths), validation metrics, model card',
        operationId: 'getModel',
        tags: ['model'],
        response: { 200: { description: "The model's facts, metrics and card", ...modelInfoSchema }, ...API_ERRORS },
      },
    },
    async () => ({
      name: predictor.model.name,
      version: predictor.model.version,
      sha256: predictor.model.sha256,
      inputSize: meta.inputSize,
      normalize: meta.preprocessing.normalize ?? 'none',
      defaultOperatingPoint: meta.defaultOperatingPoint,
      operatingPoints: meta.operatingPoints,
      temperature: meta.temperature,
      logitBias: meta.logitBias,
      tta: meta.tta,
      meta: shownMeta,
      validation: shownMeta.validation ?? null,
      modelCard,
      files: {
        members: modelFiles.members.map((m) => `${API_PREFIX}/model/files/${m}`),
        ood: modelFiles.ood && `${API_PREFIX}/model/files/${modelFiles.ood}`,
      },
    }),
  );

  api.get<{ Params: { '*': string } }>(
    '/model/files/*',
    {
      schema: {
        summary: 'Model files for running the model in the browser (TF.js Layers format)',
        operationId: 'getModelFile',
        tags: ['model'],
        // The document names the wildcard `path` (openapi.ts): OpenAPI has no unnamed rest-of-path parameter.
        params: {
          type: 'object',
          properties: {
            '*': {
              type: 'string',
              description:
                "the file's path as GET /model lists it (files.members, files.ood), e.g. model.json or " +
                'm1/model.json: it may hold slashes, sent as they are or percent-encoded (m1%2Fmodel.json), ' +
                'which name the same file',
            },
          },
        },
        produces: ['application/json', 'application/octet-stream'],
        response: {
          200: {
            description: 'model.json (application/json) or a weight shard (application/octet-stream)',
            content: {
              'application/json': { schema: { type: 'object', additionalProperties: true } },
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
          ...API_ERRORS,
          ...notFound('No such model file: only the files GET /model lists are served'),
        },
      },
    },
    async (req, reply) => {
      const rel = req.params['*'];
      // Only the files listed from cxr.json are served: the path is a key, never joined onto a folder.
      const file = modelFiles.files.get(rel);
      if (!file) throw new HttpError(404, 'NOT_FOUND', `no model file '${rel}'`);
      reply.type(rel.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      reply.header('Cache-Control', 'private, no-cache');
      return reply.send(fs.createReadStream(file));
    },
  );
}
