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
	// life ends when Run returns, and with it every record still waiting
	// for the broker, so no retry outlives the bus.
	life context.Context
	end  context.CancelFunc

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
	life, end := context.WithCancel(context.Background())
	return &KafkaBus{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), log: cfg.Log, life: life, end: end}, nil
}

// Ready reports whether the topic exists and is being consumed.
func (b *KafkaBus) Ready() bool { return b.ready.Load() }

// Publish produces m to the topic. It fails at once with ErrTooLarge when
// the record cannot fit max.message.bytes, or with ErrUnavailable when
// 10,000 records already wait for the broker. While the broker is away or
// the topic is being recreated, the record waits and is retried until
// DeliveryTimeout has passed since Publish; only then does done report
// ErrUnavailable. A retry may write the record twice; consumers drop the
// second copy by its id.
func (b *KafkaBus) Publish(m Message, done func(error)) {
	key, value := []byte(m.Room), m.Encode()
	if !fitsRecord(key, value) {
		go done(fmt.Errorf("%w: the record would be %d bytes; the topic takes %d", ErrTooLarge, len(key)+len(value)+batchOverhead, MaxRecordBytes))
		return
	}
	ctx, cancel := context.WithTimeout(b.life, b.cfg.DeliveryTimeout)
	finish := func(err error) { cancel(); done(err) }
	if !b.ready.Load() {
		go b.retry(ctx, key, value, finish)
		return
	}
	b.produce(ctx, key, value, finish)
}

func (b *KafkaBus) produce(ctx context.Context, key, value []byte, done func(error)) {
	b.cl.TryProduce(ctx, &kgo.Record{Topic: b.cfg.Topic, Key: key, Value: value}, func(_ *kgo.Record, err error) {
		switch {
		case err == nil:
			done(nil)
		case errors.Is(err, kgo.ErrClientClosed) || b.life.Err() != nil:
			done(fmt.Errorf("%w: the replica is shutting down", ErrUnavailable))
		case errors.Is(err, kgo.ErrMaxBuffered):
			done(fmt.Errorf("%w: too many messages wait for the broker", ErrUnavailable))
		case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
			done(fmt.Errorf("%w: %w", ErrTooLarge, err))
		case ctx.Err() != nil:
			done(fmt.Errorf("%w: not stored within %s: %w", ErrUnavailable, b.cfg.DeliveryTimeout, err))
		default:
			// The topic was lost or recreated, or the record was purged
			// with it: try again once the topic is back.
			go b.retry(ctx, key, value, done)
		}
	})
}

// retry waits until the topic is ready again, then produces the record.
func (b *KafkaBus) retry(ctx context.Context, key, value []byte, done func(error)) {
	for !b.ready.Load() {
		if !sleep(ctx, 50*time.Millisecond) {
			done(fmt.Errorf("%w: topic %s not ready within %s", ErrUnavailable, b.cfg.Topic, b.cfg.DeliveryTimeout))
			return
		}
	}
	if !sleep(ctx, 50*time.Millisecond) { // no busy loop on an error that persists
		done(fmt.Errorf("%w: not stored within %s", ErrUnavailable, b.cfg.DeliveryTimeout))
		return
	}
	b.produce(ctx, key, value, done)
}

// Run creates the topic (max.message.bytes 64000) if it is missing,
// consumes it and calls deliver for every record in log order, until ctx
// ends. Broker errors are retried with backoff; when the topic is
// recreated (a broker that lost its data), the client forgets the old
// topic id and consumes the new one from History records before its end
// (from its start, unless more were written before this replica noticed,
// which takes about a second). Run closes the client before it returns,
// and records still waiting for the broker fail with ErrUnavailable. Run
// must be called once.
func (b *KafkaBus) Run(ctx context.Context, deliver func(Message)) error {
	defer b.cl.Close()
	defer b.ready.Store(false)
	defer b.end()
	if err := b.ensureTopic(ctx); err != nil {
		return nil // ctx ended
	}
	// Ready only once the history before start is read: a member joining
	// right after start must get it, and /healthz keeps load balancers
	// away until then.
	catchUp := b.endOffsets(ctx)
	b.cl.AddConsumeTopics(b.cfg.Topic)
	if len(catchUp) == 0 {
		b.ready.Store(true)
	}
	b.log.Info("consuming", "topic", b.cfg.Topic, "brokers", b.cfg.Brokers, "catching_up", len(catchUp) > 0)

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
			if end, ok := catchUp[r.Partition]; ok && r.Offset+1 >= end {
				delete(catchUp, r.Partition)
				if len(catchUp) == 0 {
					b.ready.Store(true)
				}
			}
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

// endOffsets returns, per partition, the end offset of the topic's
// non-empty partitions now: what a starting replica must read before it is
// ready. On error it returns none, so a broker hiccup cannot keep a replica
// unready forever.
func (b *KafkaBus) endOffsets(ctx context.Context) map[int32]int64 {
	ends, err := b.adm.ListEndOffsets(ctx, b.cfg.Topic)
	if err != nil {
		b.log.Warn("reading the topic's end offsets; not waiting for history", "topic", b.cfg.Topic, "err", err)
		return nil
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			out[o.Partition] = o.Offset
		}
	})
	return out
}
