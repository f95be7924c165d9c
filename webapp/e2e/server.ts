// The harness's web server: the host page and its scripts, and everything else Mattermost serves
// (/api/v4, /plugins, /static and the websocket upgrade) proxied to the real server, so the page
// and the server share one origin as in a real deployment behind a reverse proxy. The proxy
// presents the server's own origin (Host, Origin, Referer), as a proxy in front of a server whose
// SiteURL is the public address does. POST /__e2e/websockets?state=down closes every proxied
// websocket and refuses new ones until state=up.
import {readFileSync} from 'node:fs';
import {createServer, request, type IncomingHttpHeaders, type Server} from 'node:http';
import {connect, type AddressInfo, type Socket} from 'node:net';
import {join} from 'node:path';

import {E2E_DIR, OUT_DIR} from './build';

const PROXIED = /^\/(api\/v4|plugins|static)\//;

export interface HarnessServer {
    url: string;
    close(): Promise<void>;
}

function upstreamHeaders(headers: IncomingHttpHeaders, upstream: URL): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
        if (v !== undefined) {
            out[k] = v;
        }
    }
    out.host = upstream.host;
    if (out.origin) {
        out.origin = upstream.origin;
    }
    if (typeof out.referer === 'string') {
        out.referer = upstream.origin + new URL(out.referer).pathname;
    }
    return out;
}

function hostPage(react: string): string {
    const scripts = `<script src="/e2e/dist/globals-react${react}.js"></script><script src="/e2e/dist/host.js"></script>`;
    return readFileSync(join(E2E_DIR, 'host.html'), 'utf8').replace('<script id="globals"></script>', scripts);
}

export function startHarnessServer(upstreamUrl: string): Promise<HarnessServer> {
    const upstream = new URL(upstreamUrl);
    const sockets = new Set<Socket>();
    let websocketsDown = false;

    const server: Server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://harness');
        const page = url.pathname.match(/^\/e2e\/react(18|19)$/);
        if (page) {
            res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'}).end(hostPage(page[1]));
            return;
        }
        const asset = url.pathname.match(/^\/e2e\/dist\/([\w.-]+\.js)$/);
        if (asset) {
            res.writeHead(200, {'Content-Type': 'text/javascript'}).end(readFileSync(join(OUT_DIR, asset[1])));
            return;
        }
        if (url.pathname === '/__e2e/websockets' && req.method === 'POST') {
            websocketsDown = url.searchParams.get('state') === 'down';
            const dropped = websocketsDown ? sockets.size : 0;
            if (websocketsDown) {
                for (const s of sockets) {
                    s.destroy();
                }
            }
            res.writeHead(200, {'Content-Type': 'application/json'}).end(JSON.stringify({dropped}));
            return;
        }
        if (!PROXIED.test(url.pathname)) {
            res.writeHead(404).end();
            return;
        }
        const up = request({host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: upstreamHeaders(req.headers, upstream)}, (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
        });
        up.on('error', (e) => res.headersSent ? res.destroy() : res.writeHead(502).end(String(e)));
        req.pipe(up);
    });

    server.on('upgrade', (req, client: Socket, head: Buffer) => {
        if (websocketsDown || !req.url?.startsWith('/api/v4/websocket')) {
            client.destroy();
            return;
        }
        const up = connect(Number(upstream.port), upstream.hostname, () => {
            const lines = [`${req.method} ${req.url} HTTP/1.1`];
            for (const [k, v] of Object.entries(upstreamHeaders(req.headers, upstream))) {
                for (const value of Array.isArray(v) ? v : [v]) {
                    lines.push(`${k}: ${value}`);
                }
            }
            up.write(`${lines.join('\r\n')}\r\n\r\n`);
            up.write(head);
            up.pipe(client);
            client.pipe(up);
        });
        // A pair goes down together: either side's end or error ends the other.
        const pair = [client, up];
        for (const s of pair) {
            sockets.add(s);
            s.on('error', () => pair.forEach((x) => x.destroy()));
            s.on('close', () => {
                sockets.delete(s);
                pair.forEach((x) => x.destroy());
            });
        }
    });

    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            const {port} = server.address() as AddressInfo;
            resolve({
                url: `http://127.0.0.1:${port}`,
                close: () =>
                    new Promise((done) => {
                        for (const s of sockets) {
                            s.destroy();
                        }
                        server.closeAllConnections();
                        server.close(() => done());
                    }),
            });
        });
    });
}
