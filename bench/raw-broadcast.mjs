// The fan-out baseline: a plain `ws` server that, when a control socket says "go", sends the
// same payload to every other socket. Run as its own process, like the backend.
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ port: Number(process.argv[2]), host: '127.0.0.1' })
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const payload = data.toString()
    for (const client of wss.clients) if (client !== ws) client.send(payload)
  })
})
wss.on('listening', () => process.send?.('ready'))
