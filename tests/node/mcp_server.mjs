// The official MCP TypeScript SDK's McpServer, for the Python tests (a peer nobody here wrote).
//
//   node tests/node/mcp_server.mjs stdio
//   node tests/node/mcp_server.mjs http PORT [--json] [--stateless] [--retry-ms N]
//
// Over HTTP it listens on 127.0.0.1:PORT (0: a free port) with express, serves
// Streamable HTTP at /mcp and prints "READY <port>" once listening. Stateful
// SSE mode keeps every event in an event store, so cut streams can be resumed
// with Last-Event-ID.
//
// Tools: add(a, b), echo(text), progress(steps), slow(seconds, marker) (writes
// `marker` when cancelled), ask() (elicitation), sample(prompt) (sampling),
// roots() (roots/list) (in JSON-response mode these three ask on the GET stream), cut(marker) (closes its own SSE stream once, then
// answers; needs the event store), drip(count, marker) (logs slowly, then
// answers). Resources test://greeting and test://items/{item}; prompt
// review(code, language) with completion of `language`.

import { randomUUID } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import * as z from 'zod/v4';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import {
    CreateMessageResultSchema,
    ElicitResultSchema,
    ListRootsResultSchema,
    isInitializeRequest
} from '@modelcontextprotocol/sdk/types.js';

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const text = value => ({ content: [{ type: 'text', text: value }] });
const cutDone = new Set();

// A server in JSON-response mode has no response stream to send its own requests
// on: this SDK drops a request tied to one, so they go out on the GET stream.
let jsonMode = false;
function serverRequest(server, extra, request, schema) {
    return jsonMode ? server.server.request(request, schema) : extra.sendRequest(request, schema);
}

async function log(extra, data) {
    await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
}

function buildServer() {
    const server = new McpServer(
        { name: 'ts-sdk-test', version: '1.0.0' },
        { capabilities: { logging: {} }, instructions: 'ts test server' }
    );
    server.registerTool(
        'add',
        {
            description: 'Add two integers.',
            inputSchema: { a: z.number().int(), b: z.number().int() },
            outputSchema: { result: z.number().int() }
        },
        async ({ a, b }) => ({ ...text(String(a + b)), structuredContent: { result: a + b } })
    );
    server.registerTool(
        'echo',
        { description: 'Return the text unchanged.', inputSchema: { text: z.string() } },
        async args => text(args.text)
    );
    server.registerTool(
        'progress',
        { description: 'Report progress steps, then answer.', inputSchema: { steps: z.number().int() } },
        async ({ steps }, extra) => {
            const token = extra._meta?.progressToken;
            for (let step = 1; step <= steps; step++) {
                if (token !== undefined) {
                    await extra.sendNotification({
                        method: 'notifications/progress',
                        params: { progressToken: token, progress: step, total: steps, message: `step ${step}` }
                    });
                }
            }
            return text('done');
        }
    );
    server.registerTool(
        'slow',
        {
            description: 'Sleep; write marker (a file path) when cancelled.',
            inputSchema: { seconds: z.number(), marker: z.string().optional() }
        },
        async ({ seconds, marker }, extra) => {
            await new Promise(resolve => {
                const timer = setTimeout(resolve, seconds * 1000);
                extra.signal.addEventListener('abort', () => {
                    clearTimeout(timer);
                    if (marker) writeFileSync(marker, 'cancelled');
                    resolve();
                });
            });
            return text('slept');
        }
    );
    server.registerTool('ask', { description: 'Elicit a name and an age (default 42).' }, async extra => {
        const result = await serverRequest(
            server,
            extra,
            {
                method: 'elicitation/create',
                params: {
                    mode: 'form',
                    message: 'who are you?',
                    requestedSchema: {
                        type: 'object',
                        properties: { name: { type: 'string' }, age: { type: 'integer', default: 42 } },
                        required: ['name']
                    }
                }
            },
            ElicitResultSchema
        );
        return text(JSON.stringify({ action: result.action, content: result.content }));
    });
    server.registerTool(
        'sample',
        { description: "Ask the client's model.", inputSchema: { prompt: z.string() } },
        async ({ prompt }, extra) => {
            const result = await serverRequest(
            server,
            extra,
                {
                    method: 'sampling/createMessage',
                    params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 10 }
                },
                CreateMessageResultSchema
            );
            return text(result.content.type === 'text' ? result.content.text : JSON.stringify(result.content));
        }
    );
    server.registerTool(
        'roots',
        { description: "The client's roots.", outputSchema: { result: z.array(z.string()) } },
        async extra => {
            const result = await serverRequest(server, extra, { method: 'roots/list' }, ListRootsResultSchema);
            const uris = result.roots.map(root => root.uri);
            return { ...text(JSON.stringify(uris)), structuredContent: { result: uris } };
        }
    );
    server.registerTool(
        'cut',
        { description: 'Close this SSE stream once, then answer.', inputSchema: { marker: z.string() } },
        async ({ marker }, extra) => {
            await log(extra, 'before the cut');
            if (!cutDone.has(marker) && extra.closeSSEStream) {
                cutDone.add(marker);
                extra.closeSSEStream();
                await sleep(300);
                await log(extra, 'after the cut');
                appendFileSync(marker, 'run\n');
            }
            return text('survived the cut');
        }
    );
    server.registerTool(
        'drip',
        { description: 'Log count messages 0.2 s apart, then answer.', inputSchema: { count: z.number().int(), marker: z.string() } },
        async ({ count, marker }, extra) => {
            for (let index = 0; index < count; index++) {
                await log(extra, `drip ${index}`);
                await sleep(200);
            }
            appendFileSync(marker, 'run\n');
            return text('dripped');
        }
    );
    server.registerResource('greeting', 'test://greeting', { mimeType: 'text/plain' }, async uri => ({
        contents: [{ uri: uri.href, text: 'hello' }]
    }));
    server.registerResource(
        'item',
        new ResourceTemplate('test://items/{item}', { list: undefined }),
        { mimeType: 'text/plain' },
        async (uri, { item }) => ({ contents: [{ uri: uri.href, text: `item ${item}` }] })
    );
    server.registerPrompt(
        'review',
        {
            description: 'Ask for a review.',
            argsSchema: {
                code: z.string(),
                // A completable optional() is not completed by this SDK; a default() is.
                language: completable(z.string().default('python'), value =>
                    ['python', 'perl', 'php'].filter(name => name.startsWith(value ?? ''))
                )
            }
        },
        ({ code, language }) => ({
            messages: [{ role: 'user', content: { type: 'text', text: `Review this ${language ?? 'python'} code: ${code}` } }]
        })
    );
    return server;
}

// Keeps every event with a counter id (ordered), so a cut stream can be resumed.
class MemoryEventStore {
    constructor() {
        this.events = [];
    }
    async storeEvent(streamId, message) {
        this.events.push({ streamId, message });
        return String(this.events.length);
    }
    async getStreamIdForEventId(eventId) {
        return this.events[Number(eventId) - 1]?.streamId;
    }
    async replayEventsAfter(lastEventId, { send }) {
        const last = Number(lastEventId);
        const streamId = this.events[last - 1]?.streamId;
        if (streamId === undefined) return '';
        for (let index = last; index < this.events.length; index++) {
            const event = this.events[index];
            if (event.streamId === streamId && event.message) await send(String(index + 1), event.message);
        }
        return streamId;
    }
}

function jsonError(res, status, code, message) {
    res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

async function serveHttp(port, { json, stateless, retryMs }) {
    const app = createMcpExpressApp({ host: '127.0.0.1' });
    const sessions = new Map();
    app.post('/mcp', async (req, res) => {
        if (stateless) {
            const server = buildServer();
            const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: json });
            res.on('close', () => {
                transport.close();
                server.close();
            });
            await server.connect(transport);
            await transport.handleRequest(req, res, req.body);
            return;
        }
        const sessionId = req.headers['mcp-session-id'];
        let transport = sessionId ? sessions.get(sessionId) : undefined;
        if (!transport) {
            if (sessionId) return jsonError(res, 404, -32001, 'Session not found');
            if (!isInitializeRequest(req.body)) return jsonError(res, 400, -32000, 'Bad Request: No valid session ID provided');
            transport = new StreamableHTTPServerTransport({
                sessionIdGenerator: () => randomUUID(),
                enableJsonResponse: json,
                eventStore: json ? undefined : new MemoryEventStore(),
                retryInterval: retryMs,
                onsessioninitialized: id => sessions.set(id, transport)
            });
            transport.onclose = () => {
                if (transport.sessionId) sessions.delete(transport.sessionId);
            };
            await buildServer().connect(transport);
        }
        await transport.handleRequest(req, res, req.body);
    });
    const other = async (req, res) => {
        if (stateless) return jsonError(res, 405, -32000, 'Method not allowed.');
        const transport = sessions.get(req.headers['mcp-session-id']);
        if (!transport) return jsonError(res, req.headers['mcp-session-id'] ? 404 : 400, -32001, 'Session not found');
        await transport.handleRequest(req, res);
    };
    app.get('/mcp', other);
    app.delete('/mcp', other);
    // Counted by the tests: how many sessions are open (a DELETE closes one).
    app.get('/sessions', (req, res) => res.json({ open: sessions.size }));
    const listener = app.listen(port, '127.0.0.1', error => {
        if (error) throw error;
        process.stdout.write(`READY ${listener.address().port}\n`);
    });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'http') {
    const at = rest.indexOf('--retry-ms');
    jsonMode = rest.includes('--json');
    await serveHttp(Number(rest[0] ?? 0), {
        json: rest.includes('--json'),
        stateless: rest.includes('--stateless'),
        retryMs: at >= 0 ? Number(rest[at + 1]) : 200
    });
} else {
    await buildServer().connect(new StdioServerTransport());
}
