// The reference server @modelcontextprotocol/server-everything over HTTP, held to
// loopback: `node everything_http.mjs PORT [streamableHttp|sse]` (PORT 0 = a free
// port; sse = the 2024-11-05 HTTP+SSE transport, endpoint /sse).
//
// The package's dist/transports/{streamableHttp,sse}.js call app.listen(PORT)
// without a host, i.e. on every interface. Every net.Server.listen() of this process is
// forced onto 127.0.0.1 before the package is imported, and the bound port is
// printed as "READY <port>" (the only line on stdout: the server's own
// console.log chatter, one line per request, is dropped so that an undrained
// stdout pipe can never block it).
import net from "node:net";

const HOST = "127.0.0.1";
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const callback = typeof args.at(-1) === "function" ? args.pop() : undefined;
  let options;
  if (args[0] !== null && typeof args[0] === "object") {
    options = { ...args[0], host: HOST };
  } else {
    const port = Number(args[0] ?? 0);
    if (!Number.isInteger(port) || port < 0) {
      throw new Error(`everything_http.mjs: refusing to listen on ${String(args[0])}`);
    }
    options = { port, host: HOST };
  }
  this.once("listening", () => {
    process.stdout.write(`READY ${this.address().port}\n`);
  });
  return callback ? listen.call(this, options, callback) : listen.call(this, options);
};

console.log = () => {};
const transport = process.argv[3] ?? "streamableHttp";
if (transport !== "streamableHttp" && transport !== "sse") {
  throw new Error(`everything_http.mjs: unknown transport ${transport}`);
}
process.env.PORT = process.argv[2] ?? "0";
await import(`@modelcontextprotocol/server-everything/dist/transports/${transport}.js`);
