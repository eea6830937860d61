package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaConfig configures a KafkaBus.
type KafkaConfig struct {
	Brokers []string // seed brokers, "host:port"
	Topic   string   // default "chat-topic"
	// History is how many records before the end of the topic a replica
	// reads back at start, to rebuild the rooms' recent history.
	History int
	// DeliveryTimeout bounds how long a record may wait for the broker
	// (including while it is away) before its sender is told it failed.
	// Default 30 s.
	DeliveryTimeout time.Duration
	Log             *slog.Logger
}

// KafkaBus publishes every message to one topic and consumes the whole
// topic (no consumer group), so every replica delivers every message.
//
// Delivery guarantee: Publish's done(nil) means the record was written to
// the topic with acks=all (every in-sync replica has it). Every replica
// that is running then delivers it to each of its clients in its room
// exactly once (duplicate ids are dropped). A failed or timed-out done
// means it may or may not have been written; a client that resends with
// the same id sees it at most once.
type KafkaBus struct {
	cfg   KafkaConfig
	cl    *kgo.Client
	adm   *kadm.Client
	log   *slog.Logger
	ready atomic.Bool

	mu      sync.Mutex
	topicID kadm.TopicID // the id the client consumes; a different one means the topic was recreated
}

var _ Bus = (*KafkaBus)(nil)

// NewKafkaBus returns a bus on cfg.Brokers. It does not dial: Run creates
// the topic and starts consuming, retrying while the brokers are away.
func NewKafkaBus(cfg KafkaConfig) (*KafkaBus, error) {
	if cfg.Topic == "" {
		cfg.Topic = "chat-topic"
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Consumers drop duplicate ids, so retries need no idempotent
		// producer state, which a broker that lost its state rejects.
		kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.MaxBufferedRecords(10000),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd().Relative(-int64(cfg.History))),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RetryBackoffFn(backoff),
		kgo.WithLogger(kgoLogger{cfg.Log}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &KafkaBus{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), log: cfg.Log}, nil
}

// Ready reports whether the topic exists and is being consumed.
func (b *KafkaBus) Ready() bool { return b.ready.Load() }

// Publish produces m to the topic. It fails at once with ErrTooLarge when
// the record cannot fit max.message.bytes, and with ErrUnavailable before
// the topic is ready or when 10,000 records already wait for the broker.
func (b *KafkaBus) Publish(m Message, done func(error)) {
	key, value := []byte(m.Room), m.Encode()
	if !fitsRecord(key, value) {
		go done(fmt.Errorf("%w: the record would be %d bytes; the topic takes %d", ErrTooLarge, len(key)+len(value)+batchOverhead, MaxRecordBytes))
		return
	}
	if !b.ready.Load() {
		go done(fmt.Errorf("%w: topic %s is not ready", ErrUnavailable, b.cfg.Topic))
		return
	}
	b.cl.TryProduce(context.Background(), &kgo.Record{Topic: b.cfg.Topic, Key: key, Value: value}, func(_ *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		done(err)
	})
}

// Run creates the topic (max.message.bytes 64000) if it is missing,
// consumes it and calls deliver for every record in log order, until ctx
// ends. Broker errors are retried with backoff; when the topic is
// recreated (a broker that lost its data), the client forgets the old
// topic id and reads the new one from its start. Run closes the client
// before it returns.
func (b *KafkaBus) Run(ctx context.Context, deliver func(Message)) error {
	defer b.cl.Close()
	if err := b.ensureTopic(ctx); err != nil {
		return nil // ctx ended
	}
	b.cl.AddConsumeTopics(b.cfg.Topic)
	b.ready.Store(true)
	b.log.Info("consuming", "topic", b.cfg.Topic, "brokers", b.cfg.Brokers)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { b.watchTopic(ctx) })

	for tries := 0; ; {
		fetches := b.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachRecord(func(r *kgo.Record) {
			fallback := "kafka-" + strconv.FormatInt(r.Timestamp.UnixMilli(), 36) + "-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10)
			m, err := DecodeRecord(r.Value, fallback, r.Timestamp)
			if err != nil {
				b.log.Warn("skipping record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			m.Offset = r.Offset
			deliver(m)
		})
		errs := fetches.Errors()
		if len(errs) == 0 {
			tries = 0
			continue
		}
		for _, e := range errs {
			b.log.Warn("fetch failed", "topic", e.Topic, "partition", e.Partition, "err", e.Err)
			if errors.Is(e.Err, kerr.UnknownTopicID) || errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
				b.resubscribe(ctx)
			}
		}
		tries++
		if !sleep(ctx, backoff(tries)) {
			return nil
		}
	}
}

// watchTopic checks every second that the topic still has the id the
// client consumes. A broker restarted without its data has none, or a new
// one after ensureTopic; franz-go would keep fetching the old id forever.
func (b *KafkaBus) watchTopic(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := b.currentTopicID(ctx)
		b.mu.Lock()
		changed := err == nil && id != b.topicID
		b.mu.Unlock()
		if errors.Is(err, kerr.UnknownTopicOrPartition) || changed {
			b.log.Warn("topic was recreated or lost; reading it again from its start", "topic", b.cfg.Topic)
			b.resubscribe(ctx)
		}
	}
}

// resubscribe recreates the topic if needed and makes the client forget
// the old topic id and consume the current one.
func (b *KafkaBus) resubscribe(ctx context.Context) {
	b.ready.Store(false)
	if b.ensureTopic(ctx) != nil {
		return
	}
	b.cl.PurgeTopicsFromClient(b.cfg.Topic)
	b.cl.AddConsumeTopics(b.cfg.Topic)
	b.ready.Store(true)
}

func (b *KafkaBus) currentTopicID(ctx context.Context) (kadm.TopicID, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	td, err := b.adm.ListTopics(ctx, b.cfg.Topic)
	if err != nil {
		return kadm.TopicID{}, err
	}
	d, ok := td[b.cfg.Topic]
	if !ok {
		return kadm.TopicID{}, kerr.UnknownTopicOrPartition
	}
	return d.ID, d.Err
}

// ensureTopic creates the topic with the seed's settings unless it exists,
// retrying with backoff until it succeeds or ctx ends, and records its id.
func (b *KafkaBus) ensureTopic(ctx context.Context) error {
	maxBytes := strconv.Itoa(MaxRecordBytes)
	for tries := 1; ; tries++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := b.adm.CreateTopic(cctx, 1, 1, map[string]*string{"max.message.bytes": &maxBytes}, b.cfg.Topic)
		cancel()
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			id, err := b.currentTopicID(ctx)
			if err == nil {
				b.mu.Lock()
				b.topicID = id
				b.mu.Unlock()
				return nil
			}
			b.log.Warn("describing topic", "topic", b.cfg.Topic, "err", err)
		} else {
			b.log.Warn("creating topic; retrying", "topic", b.cfg.Topic, "brokers", b.cfg.Brokers, "try", tries, "err", err)
		}
		if !sleep(ctx, backoff(tries)) {
			return ctx.Err()
		}
	}
}

// backoff is 100 ms doubling per try up to 2 s.
func backoff(tries int) time.Duration {
	d := 100 * time.Millisecond << min(max(tries-1, 0), 5)
	return min(d, 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// kgoLogger sends franz-go's warnings and errors to slog.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	l.log.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}
