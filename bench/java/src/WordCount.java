// Kafka Streams word count for `pnpm bench:compare` (bench/src/compare). Same topology and topic
// layout as Vltava's examples/word-count:
//   <input> -flatMapValues(words)-> groupBy(word) -[<appId>-counts-repartition]-> count("counts") -> <output>
// Usage: WordCount <bootstrap> <appId> <input> <output> <exactly_once_v2|at_least_once> <commitMs> <stateDir> <sessionTimeoutMs> [numStreamThreads, default 1]
// Prints STATE <state> on each state change and RESTORED <store> <partition> <records> <ms> after each restore.
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

public final class WordCount {
  private static final Pattern SPLIT = Pattern.compile("[^\\p{L}\\p{N}']+", Pattern.UNICODE_CHARACTER_CLASS);

  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a[0]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, a[1]);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a[4]);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(a[5]));
    p.put(StreamsConfig.STATE_DIR_CONFIG, a[6]);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, a.length > 8 ? Integer.parseInt(a[8]) : 1);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), Integer.parseInt(a[7]));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    StreamsBuilder b = new StreamsBuilder();
    b.stream(a[2], Consumed.with(Serdes.String(), Serdes.String()))
        .flatMapValues(line -> {
          List<String> out = new ArrayList<>();
          for (String w : SPLIT.split(line.toLowerCase(Locale.ROOT))) if (!w.isEmpty()) out.add(w);
          return out;
        })
        .groupBy((k, w) -> w, Grouped.with("counts", Serdes.String(), Serdes.String()))
        .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts").withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
        .toStream()
        .to(a[3], Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(b.build(), p);
    ConcurrentHashMap<TopicPartition, Long> restoreStart = new ConcurrentHashMap<>();
    streams.setGlobalStateRestoreListener(new StateRestoreListener() {
      @Override public void onRestoreStart(TopicPartition tp, String store, long start, long end) { restoreStart.put(tp, System.nanoTime()); }
      @Override public void onBatchRestored(TopicPartition tp, String store, long end, long n) { }
      @Override public void onRestoreEnd(TopicPartition tp, String store, long total) {
        Long t0 = restoreStart.get(tp);
        long ms = t0 == null ? -1 : (System.nanoTime() - t0) / 1_000_000;
        System.out.println("RESTORED " + store + " " + tp.partition() + " " + total + " " + ms);
      }
    });
    streams.setStateListener((now, before) -> System.out.println("STATE " + now));
    Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(10))));
    streams.start();
    Thread.currentThread().join();
  }
}
