// Preloaded (`node --import`) into the MCP everything server by weir-tools' tests.
// The server listens on every interface and has no setting for the host; the tests bind
// what they start to 127.0.0.1 only, so a listen on a bare port gets that host. It also
// reports the port it got, so that a test can ask for port 0 and learn the real one.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
    const port = args[0];
    const bare_port = typeof port === "number" || (typeof port === "string" && /^\d+$/.test(port));
    if (bare_port) {
        if (typeof args[1] !== "string") {
            args.splice(1, 0, "127.0.0.1");
        }
        this.once("listening", () => console.error(`weir-listening ${this.address().address} ${this.address().port}`));
    }
    return listen.apply(this, args);
};
