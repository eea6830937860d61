// Package chat is latch's chat backend: the seed's Socket.IO chat, in Go,
// whose replicas fan messages out through a Kafka topic.
//
// # Sessions
//
// A replica speaks Socket.IO v5 over Engine.IO v4 with
// github.com/zishang520/socket.io: a session opens with HTTP long-polling
// and upgrades to a WebSocket, and its state (nickname, room) lives in the
// replica that opened it, so a proxy in front must keep every request of a
// session on one replica (latch's sticky cookie). The official clients
// (socket.io-client on Node and in browsers) work unchanged. The Go library
// does not ship the browser client bundle, so the page (web/) carries its
// own small Engine.IO/Socket.IO client (web/eio.js) that opens by polling
// and upgrades the same way; nothing is fetched from elsewhere.
//
// Events and answers are listed on knownEvents in socket.go. Every bad
// input gets an answer to its sender only: a "chat:error" {code, error}
// event, or the acknowledgement callback {ok: false, code, error} when the
// client asked for one. Codes: malformed, too_large, empty, bad_nick,
// bad_room, unknown_event, unavailable. An Engine.IO or Socket.IO frame
// that cannot be parsed ends that session (the protocol's answer, as in
// the Node server); a frame over 256,000 bytes does too. Neither affects
// other sessions.
//
// # Fan-out and the delivery guarantee
//
// Every accepted message is produced to one topic (default "chat-topic",
// created at start with max.message.bytes 64000, one partition) with
// acks=all and linger 0; every replica consumes the whole topic without a
// consumer group and delivers each record to its own clients in the
// record's room. A replica shows even its own clients' messages only once
// it has read them back, so every replica shows a room in the same order.
//
// The guarantee a sender gets: an ack ({ok: true, id}) means the message is
// written to the topic with acks=all. Every running replica then delivers
// it to each of its clients in that room exactly once: messages carry an
// id and a replica drops an id it has delivered (it remembers the last
// 100,000). While the broker is away, a message waits and is retried for
// up to 30 s, and the ack comes when it is written; otherwise the sender
// gets "unavailable" and the message may or may not have been written. A
// client that resends it with the same id sees it at most once. A message
// is never acked and then dropped by a replica that keeps running.
// KAFKA_ENABLED=false replaces Kafka by a LocalBus: acked means delivered
// to this replica's clients only.
//
// # History
//
// At start a replica reads the last History records (default 50) of the
// topic back, Kafka's replay from an old offset, and keeps the last
// History messages of each room; a client that connects or joins a room
// gets them as "history".
package chat
