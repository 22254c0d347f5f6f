/*
 * Connects Curator, with its EnsembleTracker on, to the connection string
 * given as the first argument, and prints "connection <string>" each time
 * the connection string it uses changes (first once connected). Runs until
 * killed or stdin closes.
 */

import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;

public class EnsembleWatch {
  public static void main(String[] args) throws Exception {
    CuratorFramework client = CuratorFrameworkFactory.builder()
        .connectString(args[0])
        .ensembleTracker(true)
        .sessionTimeoutMs(10000)
        .retryPolicy(new RetryOneTime(100))
        .build();
    client.start();
    if (!client.blockUntilConnected(20, TimeUnit.SECONDS)) {
      System.out.println("not connected");
      System.exit(1);
    }
    Thread stdin = new Thread(() -> {
      try {
        while (System.in.read() >= 0) {}
      } catch (Exception ignored) {}
      System.exit(0);
    });
    stdin.setDaemon(true);
    stdin.start();
    String last = null;
    for (;;) {
      String now = client.getZookeeperClient().getCurrentConnectionString();
      if (!now.equals(last)) {
        System.out.println("connection " + now);
        System.out.flush();
        last = now;
      }
      Thread.sleep(50);
    }
  }
}
