package chat

import (
	"context"
	"sync"
)

// Bus carries messages between replicas.
type Bus interface {
	// Publish hands m to the bus and returns at once; done is called
	// exactly once, from another goroutine, with nil only when m is stored
	// (for Kafka: written with acks=all), or with the reason it is not.
	// done must not block.
	Publish(m Message, done func(error))
	// Run delivers every message on the bus, in order, to deliver until
	// ctx ends. It returns nil when ctx ends, or an error that stops the
	// replica.
	Run(ctx context.Context, deliver func(Message)) error
	// Ready reports whether Publish can currently succeed.
	Ready() bool
}

// LocalBus delivers messages to this replica only: the seed's replica with
// KAFKA_ENABLED=false. The zero value is not usable; use NewLocalBus.
type LocalBus struct {
	ch   chan pending
	once sync.Once
}

type pending struct {
	m    Message
	done func(error)
}

// NewLocalBus returns a bus that holds up to 1024 undelivered messages;
// Publish fails with ErrUnavailable when it is full.
func NewLocalBus() *LocalBus { return &LocalBus{ch: make(chan pending, 1024)} }

var _ Bus = (*LocalBus)(nil)

func (b *LocalBus) Publish(m Message, done func(error)) {
	m.Offset = -1
	select {
	case b.ch <- pending{m, done}:
	default:
		go done(ErrUnavailable)
	}
}

func (b *LocalBus) Ready() bool { return true }

func (b *LocalBus) Run(ctx context.Context, deliver func(Message)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-b.ch:
			p.done(nil)
			deliver(p.m)
		}
	}
}
