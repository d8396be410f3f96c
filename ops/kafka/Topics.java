// Creates Kafka topics, one JVM for many (kafka-topics takes one topic a
// call), and returns once the broker lists every one of them. A topic that
// already exists is left as it is. Compiled by `ops/kafka.sh fetch` into
// the cache beside the broker's jars; run through `ops/kafka.sh topics`.
//
//   Topics BOOTSTRAP PARTITIONS TOPIC[,key=value...] ...
//   Topics BOOTSTRAP delete TOPIC ...
//
// e.g. `Topics 127.0.0.1:9092 4 chat.events context.prebuilt,cleanup.policy=compact`.
// Exits 0 when every topic exists (with delete: is gone), 1 with the
// reason on stderr otherwise.

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.errors.TopicExistsException;

public final class Topics {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: Topics BOOTSTRAP PARTITIONS TOPIC[,key=value...] ...");
            System.exit(2);
        }
        if (args[1].equals("delete")) {
            delete(args[0], List.of(args).subList(2, args.length));
            return;
        }
        int partitions = Integer.parseInt(args[1]);
        List<NewTopic> topics = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            String[] parts = args[i].split(",");
            Map<String, String> configs = new HashMap<>();
            for (int j = 1; j < parts.length; j++) {
                int eq = parts[j].indexOf('=');
                if (eq <= 0) {
                    System.err.println("topics: bad config '" + parts[j] + "' (key=value)");
                    System.exit(2);
                }
                configs.put(parts[j].substring(0, eq), parts[j].substring(eq + 1));
            }
            topics.add(new NewTopic(parts[0], partitions, (short) 1).configs(configs));
        }

        try (Admin admin = admin(args[0])) {
            Map<String, KafkaFuture<Void>> results = admin.createTopics(topics).values();
            for (Map.Entry<String, KafkaFuture<Void>> e : results.entrySet()) {
                try {
                    e.getValue().get(30, TimeUnit.SECONDS);
                } catch (ExecutionException ex) {
                    if (!(ex.getCause() instanceof TopicExistsException)) {
                        System.err.println("topics: cannot create '" + e.getKey() + "': "
                                + ex.getCause().getMessage());
                        System.exit(1);
                    }
                }
            }
            // Creation is acknowledged by the controller; wait until the
            // broker's metadata lists every topic with a leader for each
            // partition, so that a client started next finds them.
            long end = System.currentTimeMillis() + 30000;
            for (;;) {
                boolean ready = true;
                try {
                    for (var d : admin.describeTopics(results.keySet()).allTopicNames()
                            .get(10, TimeUnit.SECONDS).values()) {
                        for (var p : d.partitions())
                            if (p.leader() == null || p.leader().isEmpty())
                                ready = false;
                    }
                } catch (ExecutionException ex) {
                    ready = false;
                }
                if (ready)
                    break;
                if (System.currentTimeMillis() > end) {
                    System.err.println("topics: created, but not all have a leader after 30 s");
                    System.exit(1);
                }
                Thread.sleep(50);
            }
        }
    }

    static Admin admin(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(props);
    }

    // Deletes the topics and returns once the broker no longer lists any.
    static void delete(String bootstrap, List<String> names) throws Exception {
        try (Admin admin = admin(bootstrap)) {
            try {
                admin.deleteTopics(names).all().get(30, TimeUnit.SECONDS);
            } catch (ExecutionException ex) {
                System.err.println("topics: cannot delete " + names + ": "
                        + ex.getCause().getMessage());
                System.exit(1);
            }
            long end = System.currentTimeMillis() + 30000;
            for (;;) {
                var left = new ArrayList<>(admin.listTopics().names().get(10, TimeUnit.SECONDS));
                left.retainAll(names);
                if (left.isEmpty())
                    break;
                if (System.currentTimeMillis() > end) {
                    System.err.println("topics: still listed after 30 s: " + left);
                    System.exit(1);
                }
                Thread.sleep(50);
            }
        }
    }
}
