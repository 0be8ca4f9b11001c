/**
 * A TCP relay between the service and an image, to blackhole the link for real: while
 * blackholed, every byte in either direction is dropped and every connection is kept open (as a
 * dead route or a firewall dropping packets would do: no RST, no FIN), and new connections are
 * accepted and then silent. `restore()` forwards again for connections made from then on.
 */
import net from "node:net";

export interface TcpRelay {
  /** Where to connect instead of the image, `tcp://127.0.0.1:<port>`. */
  readonly endpoint: string;
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpRelay(target: string): Promise<TcpRelay> {
  const match = /^tcp:\/\/([^:]+):(\d+)$/.exec(target);
  if (match === null) throw new Error(`not a tcp:// endpoint: ${target}`);
  const [, host = "", port = ""] = match;
  let dropping = false;
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = net.createServer((inbound) => {
    track(inbound);
    if (dropping) {
      inbound.on("data", () => undefined); // read and dropped
      return;
    }
    const outbound = net.connect(Number(port), host);
    track(outbound);
    // Each connection forwards until the relay starts dropping, then swallows what arrives.
    inbound.on("data", (chunk) => void (dropping || outbound.write(chunk)));
    outbound.on("data", (chunk) => void (dropping || inbound.write(chunk)));
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the relay has no port");
  return {
    endpoint: `tcp://127.0.0.1:${address.port}`,
    blackhole: () => {
      dropping = true;
    },
    restore: () => {
      dropping = false;
      // The connections of the blackhole stay silent (their streams lost bytes); new ones forward.
      for (const socket of sockets) socket.removeAllListeners("data").on("data", () => undefined);
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
