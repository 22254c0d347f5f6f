/**
 * The test ZooKeeper's SASL settings: a server JAAS file (its DIGEST-MD5
 * users, as zetcd's `--jaas-config`) and the SASL authentication provider.
 *
 * @module
 */

/** zoo.cfg lines (ending in a newline) and JVM flags for {@linkcode startZooKeeper}'s `jaas`. */
export async function zooKeeperSaslSettings(
  dir: string,
  jaas: string | undefined,
): Promise<{ cfg: string; jvm: string[] }> {
  if (jaas === undefined) return { cfg: "", jvm: [] };
  const file = `${dir}/server.jaas`;
  await Deno.writeTextFile(file, jaas);
  return {
    cfg: "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
    jvm: [`-Djava.security.auth.login.config=${file}`],
  };
}

/** A server JAAS file whose `Server` section lists `users` (name → password). */
export function serverJaas(users: Record<string, string>): string {
  const options = Object.entries(users).map(([name, password]) =>
    `  user_${name}=${JSON.stringify(password)}`
  );
  return `Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n${
    options.join("\n")
  };\n};\n`;
}
