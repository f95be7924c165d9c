// Mattermost's websocket, as its webapp holds it: same origin, authenticated by the session
// cookie, reconnected with a doubling backoff after any close. A reconnect is a new connection
// (no connection_id): the server does not resend what the old one missed, which is what a client
// sees once the server's resume queue has expired, and what the plugin's reconnect handler exists
// for. The handlers run once the server said hello, so nothing published after it is lost.
import type {WsMessage} from './registry';

const BACKOFF_MS = [100, 200, 400, 800, 1600, 3200];

export class HostSocket {
    connects = 0;
    reconnects = 0;
    open = false;
    private failures = 0;

    constructor(
        private readonly onEvent: (msg: WsMessage) => void,
        private readonly onReconnect: () => void,
    ) {}

    start(): void {
        const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v4/websocket`);
        ws.onmessage = (e: MessageEvent<string>) => {
            const msg = JSON.parse(e.data) as Partial<WsMessage> & {status?: string};
            if (typeof msg.event !== 'string') {
                return; // a reply to a client request
            }
            if (msg.event === 'hello') {
                this.open = true;
                this.failures = 0;
                this.connects += 1;
                if (this.connects > 1) {
                    this.reconnects += 1;
                    this.onReconnect();
                }
            }
            this.onEvent(msg as WsMessage);
        };
        ws.onclose = () => {
            this.open = false;
            const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
            this.failures += 1;
            setTimeout(() => this.start(), delay);
        };
    }
}
