// An A2A 1.0 agent served by the official JavaScript SDK (@a2a-js/sdk), for the Python tests.
//
//   node a2a_agent.mjs PORT [TOKEN]
//
// Listens on 127.0.0.1:PORT (0: a free port) and prints "READY <port>" once it serves.
// Two agents, each with its card, JSON-RPC and HTTP+JSON (REST) interfaces:
//   /                 open
//   /secure           the same agent behind a bearer token (TOKEN, default "s3cret"):
//                     its card declares the scheme; its interfaces answer 401 without it.
//                     (The SDK serves the card with JSON.stringify of its object, so the
//                     scheme arrives in ts-proto's oneof form: {"scheme": {"$case", "value"}}.)
// What the agent does, by the first text part of the message:
//   "task [N] [MS]"   a task: submitted -> working -> N artifact chunks (appended to one
//                     artifact "report", one every MS ms) -> completed (default N=3, MS=0);
//                     cancelable between chunks
//   "ask"             a task that asks for input (input-required); the next message on the
//                     task completes it with an artifact "greeting" ("hello, <answer>")
//   "fail"            a task that fails
//   anything else     a direct message reply: "echo: <text>", data parts echoed as data parts
import express from 'express';

import { A2A_PROTOCOL_VERSION, AGENT_CARD_PATH, Role, TaskState } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import {
  agentCardHandler,
  jsonRpcHandler,
  restHandler,
  UserBuilder,
} from '@a2a-js/sdk/server/express';

const port = Number(process.argv[2] || 0);
const token = process.argv[3] || 's3cret';

const now = () => new Date().toISOString();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function textPart(text) {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

function agentMessage(parts, taskId, contextId) {
  return {
    role: Role.ROLE_AGENT,
    messageId: crypto.randomUUID(),
    parts,
    taskId,
    contextId,
    extensions: [],
    metadata: {},
    referenceTaskIds: [],
  };
}

function status(taskId, contextId, state, text) {
  return AgentEvent.statusUpdate({
    taskId,
    contextId,
    status: {
      state,
      timestamp: now(),
      message: text === undefined ? undefined : agentMessage([textPart(text)], taskId, contextId),
    },
    metadata: {},
  });
}

function artifact(taskId, contextId, artifactId, name, text, append, lastChunk) {
  return AgentEvent.artifactUpdate({
    taskId,
    contextId,
    artifact: {
      artifactId,
      name,
      description: '',
      parts: [textPart(text)],
      metadata: undefined,
      extensions: [],
    },
    append,
    lastChunk,
    metadata: undefined,
  });
}

class TestAgent {
  canceled = new Set();

  cancelTask = async (taskId) => {
    this.canceled.add(taskId);
  };

  async execute(ctx, bus) {
    const message = ctx.userMessage;
    const { taskId, contextId } = ctx;
    const texts = message.parts.filter((p) => p.content?.$case === 'text').map((p) => p.content.value);
    const words = (texts[0] || '').trim().split(/\s+/);
    const snapshot = ctx.task ?? {
      id: taskId,
      contextId,
      status: { state: TaskState.TASK_STATE_SUBMITTED, timestamp: now(), message: undefined },
      artifacts: [],
      history: [message],
      metadata: undefined,
    };
    try {
      if (ctx.task && ctx.task.status?.state === TaskState.TASK_STATE_INPUT_REQUIRED) {
        bus.publish(AgentEvent.task(snapshot));
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_WORKING));
        bus.publish(artifact(taskId, contextId, 'greeting', 'greeting', `hello, ${texts.join(' ')}`, false, true));
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_COMPLETED, 'done'));
        return;
      }
      if (words[0] === 'task') {
        const chunks = Number(words[1] || 3);
        const delay = Number(words[2] || 0);
        bus.publish(AgentEvent.task(snapshot));
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_WORKING, 'working on it'));
        for (let i = 1; i <= chunks; i++) {
          if (delay) await sleep(delay);
          if (this.canceled.has(taskId)) {
            bus.publish(status(taskId, contextId, TaskState.TASK_STATE_CANCELED, `canceled at chunk ${i}`));
            return;
          }
          bus.publish(artifact(taskId, contextId, 'report', 'report', `chunk ${i};`, i > 1, i === chunks));
        }
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_COMPLETED, 'done'));
        return;
      }
      if (words[0] === 'ask') {
        bus.publish(AgentEvent.task(snapshot));
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_INPUT_REQUIRED, 'what is your name?'));
        return;
      }
      if (words[0] === 'fail') {
        bus.publish(AgentEvent.task(snapshot));
        bus.publish(status(taskId, contextId, TaskState.TASK_STATE_FAILED, 'it went wrong'));
        return;
      }
      const parts = message.parts.map((p) =>
        p.content?.$case === 'text' ? textPart(`echo: ${p.content.value}`) : p
      );
      bus.publish(AgentEvent.message(agentMessage(parts, undefined, contextId)));
    } finally {
      this.canceled.delete(taskId);
    }
  }
}

function makeCard(base, secure) {
  return {
    name: secure ? 'JS test agent (bearer)' : 'JS test agent',
    description: 'An agent served by @a2a-js/sdk for the agenticaiframework tests.',
    supportedInterfaces: [
      { url: `${base}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION },
      { url: `${base}/a2a/rest`, protocolBinding: 'HTTP+JSON', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION },
    ],
    provider: undefined,
    version: '1.0.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: secure
      ? {
          bearer: {
            scheme: {
              $case: 'httpAuthSecurityScheme',
              value: { description: 'a test token', scheme: 'Bearer', bearerFormat: '' },
            },
          },
        }
      : {},
    securityRequirements: secure ? [{ schemes: { bearer: { list: [] } } }] : [],
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills: [
      {
        id: 'echo',
        name: 'echo',
        description: 'Echoes, or runs a test task.',
        tags: ['test'],
        examples: ['hello', 'task 3'],
        inputModes: [],
        outputModes: [],
        securityRequirements: [],
      },
    ],
    signatures: [],
  };
}

function requireBearer(req, res, next) {
  if (req.headers.authorization === `Bearer ${token}`) return next();
  res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'a bearer token is required' });
}

const app = express();
const cards = [];

function mount(prefix, secure) {
  const card = makeCard('', secure);
  cards.push([prefix, card]);
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), new TestAgent());
  const guard = secure ? [requireBearer] : [];
  app.use(`${prefix}/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler }));
  app.use(`${prefix}/a2a/jsonrpc`, ...guard, jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
  app.use(`${prefix}/a2a/rest`, ...guard, restHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
}

mount('', false);
mount('/secure', true);

const server = app.listen(port, '127.0.0.1', (err) => {
  if (err) throw err;
  const actual = server.address().port;
  for (const [prefix, card] of cards) {
    for (const iface of card.supportedInterfaces) {
      iface.url = `http://127.0.0.1:${actual}${prefix}${iface.url}`;
    }
  }
  process.stdout.write(`READY ${actual}\n`);
});

// Stop when the test closes our stdin (or ends us with a signal).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
