/**
 * A secured local broker (on demand): TLS with a throwaway CA, SASL/SCRAM users created when the
 * storage is formatted, and ACLs enforced by KRaft's StandardAuthorizer.
 *
 *   const broker = await startLocalKafka({ port: 0, security: { tls: true, sasl: 'SCRAM-SHA-512', users: ['app'], acls: true } });
 *   const kafka = new Kafka({ brokers: [broker.brokers], ...broker.security!.kafkajs('app') });
 *
 * What it sets up, in the run directory's `security/` folder (mode 0700):
 *   - ca.key/ca.pem: a CA valid for 30 days (openssl); ca.pem is what clients trust;
 *   - broker.key/broker.pem: the broker certificate, SAN DNS:localhost and IP:127.0.0.1, signed by the CA;
 *   - broker.keystore.p12 (key + chain, openssl) and truststore.p12 (the CA, keytool): PKCS12 for the broker;
 *   - admin.properties (Java tools' --command-config) and admin.kcat.conf (kcat -F) for the admin user.
 * The client listener is SASL_SSL (SASL_PLAINTEXT without tls, SSL without sasl); the inter-broker
 * listener is the same, as the admin user; the controller listener stays PLAINTEXT on 127.0.0.1.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaConfig, SASLOptions } from 'kafkajs';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface ScramUser {
  readonly name: string;
  readonly password: string;
}

export interface LocalKafkaSecurityOptions {
  /** TLS on the client listener with a throwaway CA (default true). */
  readonly tls?: boolean;
  /** SASL/SCRAM mechanism of the client listener (default 'SCRAM-SHA-512'); false for TLS only. */
  readonly sasl?: ScramMechanism | false;
  /** SCRAM users besides the admin: a name (a random password is made) or a name and password. */
  readonly users?: readonly (string | ScramUser)[];
  /** The super user (default `admin` with a random password). */
  readonly admin?: string | ScramUser;
  /**
   * ACLs: StandardAuthorizer, `super.users=User:<admin>;User:ANONYMOUS`, `allow.everyone.if.no.acl.found=false`
   * (default false). Needs SASL (someone must be the super user). ANONYMOUS is the broker itself on
   * the PLAINTEXT controller listener (127.0.0.1 only): without it the broker cannot register.
   */
  readonly acls?: boolean;
  /**
   * Also accept SASL/PLAIN (over the same TLS listener, same users and principals). For clients whose
   * SCRAM fails against Kafka 4.x brokers: librdkafka before 2.6.1 (Debian 12's kcat has 2.0.2) sends a
   * client-final nonce that 4.x rejects ("invalid credentials"), librdkafka PR 4895. Default false.
   */
  readonly plain?: boolean;
}

export type SecurityProtocol = 'SASL_SSL' | 'SASL_PLAINTEXT' | 'SSL';

/** What a client needs to talk to a secured local broker. Serializable parts only (see `describeSecurity`). */
export interface SecurityInfo {
  readonly protocol: SecurityProtocol;
  readonly mechanism: ScramMechanism | undefined;
  readonly acls: boolean;
  /** SASL/PLAIN is accepted too (`plain` option). */
  readonly plain: boolean;
  /** PEM file of the CA that signed the broker certificate (TLS only). */
  readonly caFile: string | undefined;
  readonly admin: ScramUser | undefined;
  readonly users: readonly ScramUser[];
  /** The security directory: certificates, stores, admin.properties, admin.kcat.conf. */
  readonly dir: string;
}

export interface LocalKafkaSecurity extends SecurityInfo {
  /** The CA certificate (PEM), for `ssl: { ca: [caPem] }`. */
  readonly caPem: string | undefined;
  /**
   * kafkajs settings for `user` (a name, a user, or the admin by default): `ssl` with the CA and
   * `sasl` with the credentials. Spread into `new Kafka({ brokers, ...security.kafkajs('app') })`,
   * or pass as Vltava's `kafka` option.
   */
  kafkajs(user?: string | ScramUser): Pick<KafkaConfig, 'ssl' | 'sasl'>;
  /**
   * librdkafka (kcat) settings for `user`, for `-X key=value` or readCommittedKcat's `config`;
   * `mechanism` 'PLAIN' needs the `plain` option (see there for why).
   */
  librdkafka(user?: string | ScramUser, mechanism?: ScramMechanism | 'PLAIN'): Record<string, string>;
}

export class SecuritySetupError extends Error {
  override readonly name = 'SecuritySetupError';
}

const SAFE = /^[A-Za-z0-9._~-]+$/;

function toUser(u: string | ScramUser): ScramUser {
  const user = typeof u === 'string' ? { name: u, password: randomBytes(18).toString('hex') } : u;
  // The storage tool's --add-scram parser and the JAAS line take these verbatim: keep them plain.
  if (!SAFE.test(user.name)) throw new SecuritySetupError(`SCRAM user name "${user.name}" must match ${SAFE.source}`);
  if (!SAFE.test(user.password)) throw new SecuritySetupError(`the password of SCRAM user "${user.name}" must match ${SAFE.source}`);
  return user;
}

function run(cmd: string, args: readonly string[], env: Record<string, string>, what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new SecuritySetupError(
      `\`${cmd}\` was not found on PATH: the secured local broker needs it to ${what} ` +
        (cmd === 'keytool' ? '(it comes with the JDK: apt-get install openjdk-17-jdk-headless).' : '(apt-get install openssl).'),
    );
  }
  if (r.status !== 0) throw new SecuritySetupError(`Could not ${what}: \`${cmd} ${args[0]}\` exited ${r.status ?? r.error?.message}:\n${r.stderr}`);
}

interface Material {
  caFile: string;
  caPem: string;
  keystore: string;
  truststore: string;
  storePassword: string;
}

/** A throwaway CA and a broker certificate for 127.0.0.1/localhost, as PEM and PKCS12. */
function makeCertificates(dir: string): Material {
  const p = (f: string): string => join(dir, f);
  const storePassword = randomBytes(18).toString('hex');
  const env = { VLTAVA_STORE_PASS: storePassword };
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '30', '-keyout', p('ca.key'), '-out', p('ca.pem'),
    '-subj', '/CN=vltava-local-kafka-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], env, 'make the CA');
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', p('broker.key'), '-out', p('broker.csr'), '-subj', '/CN=localhost'], env, 'make the broker key');
  writeFileSync(p('broker.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  run('openssl', ['x509', '-req', '-sha256', '-days', '30', '-in', p('broker.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('broker.pem'), '-extfile', p('broker.ext')], env, 'sign the broker certificate');
  run('openssl', ['pkcs12', '-export', '-in', p('broker.pem'), '-inkey', p('broker.key'), '-certfile', p('ca.pem'), '-name', 'broker',
    '-out', p('broker.keystore.p12'), '-passout', 'env:VLTAVA_STORE_PASS'], env, 'write the broker keystore');
  run('keytool', ['-importcert', '-noprompt', '-alias', 'ca', '-file', p('ca.pem'), '-keystore', p('truststore.p12'), '-storetype', 'PKCS12',
    '-storepass:env', 'VLTAVA_STORE_PASS'], env, 'write the truststore');
  return { caFile: p('ca.pem'), caPem: readFileSync(p('ca.pem'), 'utf8'), keystore: p('broker.keystore.p12'), truststore: p('truststore.p12'), storePassword };
}

export interface PreparedSecurity {
  readonly security: LocalKafkaSecurity;
  /** server.properties entries for `listener` (the client and inter-broker listener name). */
  readonly serverProperties: Record<string, string>;
  /** Extra `kafka-storage format` arguments (--add-scram per user and mechanism). */
  readonly formatArgs: string[];
}

/** Makes the certificates and credentials in `<runDir>/security` and the broker settings that use them. */
export function prepareSecurity(runDir: string, opts: LocalKafkaSecurityOptions): PreparedSecurity {
  const tls = opts.tls ?? true;
  const mechanism = opts.sasl === false ? undefined : (opts.sasl ?? 'SCRAM-SHA-512');
  const acls = opts.acls ?? false;
  const plain = opts.plain ?? false;
  if (plain && mechanism === undefined) throw new SecuritySetupError('security.plain needs sasl.');
  if (mechanism !== undefined && mechanism !== 'SCRAM-SHA-256' && mechanism !== 'SCRAM-SHA-512') {
    throw new SecuritySetupError(`security.sasl must be 'SCRAM-SHA-256' or 'SCRAM-SHA-512' (or false), got "${String(mechanism)}"`);
  }
  if (!tls && mechanism === undefined) throw new SecuritySetupError('security needs tls or sasl (or both); leave security out for a plaintext broker.');
  if (acls && mechanism === undefined) throw new SecuritySetupError('security.acls needs sasl: the super user is a SCRAM user.');
  const protocol: SecurityProtocol = tls ? (mechanism ? 'SASL_SSL' : 'SSL') : 'SASL_PLAINTEXT';
  const dir = join(runDir, 'security');
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const admin = mechanism ? toUser(opts.admin ?? 'admin') : undefined;
  const users = mechanism ? (opts.users ?? []).map(toUser) : [];
  const names = new Set<string>();
  for (const u of [...(admin ? [admin] : []), ...users]) {
    if (names.has(u.name)) throw new SecuritySetupError(`SCRAM user "${u.name}" is given twice`);
    names.add(u.name);
  }
  const material = tls ? makeCertificates(dir) : undefined;
  const lname = protocol.toLowerCase();
  const props: Record<string, string> = {};
  if (material) {
    Object.assign(props, {
      'ssl.keystore.type': 'PKCS12',
      'ssl.keystore.location': material.keystore,
      'ssl.keystore.password': material.storePassword,
      'ssl.key.password': material.storePassword,
      'ssl.truststore.type': 'PKCS12',
      'ssl.truststore.location': material.truststore,
      'ssl.truststore.password': material.storePassword,
      'ssl.client.auth': 'none',
      'ssl.endpoint.identification.algorithm': 'https',
    });
  }
  const jaas = (u: ScramUser): string => `org.apache.kafka.common.security.scram.ScramLoginModule required username="${u.name}" password="${u.password}";`;
  if (mechanism && admin) {
    Object.assign(props, {
      'sasl.enabled.mechanisms': plain ? `${mechanism},PLAIN` : mechanism,
      'sasl.mechanism.inter.broker.protocol': mechanism,
      // The broker's own connections to its inter-broker listener log in as the admin.
      [`listener.name.${lname}.${mechanism.toLowerCase()}.sasl.jaas.config`]: jaas(admin),
    });
    if (plain) {
      props[`listener.name.${lname}.plain.sasl.jaas.config`] =
        `org.apache.kafka.common.security.plain.PlainLoginModule required ${[admin, ...users].map((u) => `user_${u.name}="${u.password}"`).join(' ')};`;
    }
  }
  if (acls && admin) {
    Object.assign(props, {
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      // The controller listener is PLAINTEXT on 127.0.0.1: the broker's requests to the controller
      // (registration, heartbeats) come as User:ANONYMOUS, which exists on no other listener.
      'super.users': `User:${admin.name};User:ANONYMOUS`,
      'allow.everyone.if.no.acl.found': 'false',
    });
  }
  const formatArgs = mechanism ? [...(admin ? [admin] : []), ...users].flatMap((u) => ['--add-scram', `${mechanism}=[name=${u.name},password=${u.password}]`]) : [];

  const security = withClientHelpers(
    { protocol, mechanism, acls, plain, caFile: material?.caFile, admin, users, dir },
    material?.caPem,
  );

  // The admin's client settings for the Java tools (kafka-acls.sh --command-config) and kcat (-F).
  const javaProps: Record<string, string> = { 'security.protocol': protocol };
  if (material) Object.assign(javaProps, { 'ssl.truststore.type': 'PEM', 'ssl.truststore.location': material.caFile });
  if (admin && mechanism) Object.assign(javaProps, { 'sasl.mechanism': mechanism, 'sasl.jaas.config': jaas(admin) });
  const lines = (o: Record<string, string>): string => `${Object.entries(o).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
  writeFileSync(join(dir, 'admin.properties'), lines(javaProps), { mode: 0o600 });
  // kcat: PLAIN when the broker takes it (Debian 12's kcat cannot do SCRAM with Kafka 4, see `plain`).
  writeFileSync(join(dir, 'admin.kcat.conf'), lines(security.librdkafka(undefined, plain ? 'PLAIN' : undefined)), { mode: 0o600 });
  writeFileSync(join(dir, 'security.json'), JSON.stringify(describeSecurity(security), null, 2), { mode: 0o600 });
  return { security, serverProperties: props, formatArgs };
}

/** The serializable part (what `security.json` in the security directory holds). */
export function describeSecurity(s: SecurityInfo): SecurityInfo {
  return { protocol: s.protocol, mechanism: s.mechanism, acls: s.acls, plain: s.plain, caFile: s.caFile, admin: s.admin, users: s.users, dir: s.dir };
}

/** Rebuilds the client helpers from a security directory (the CLI's `status` of an `up --secure` broker). */
export function loadSecurity(dir: string): LocalKafkaSecurity {
  const info = JSON.parse(readFileSync(join(dir, 'security.json'), 'utf8')) as SecurityInfo;
  return withClientHelpers(info, info.caFile ? readFileSync(info.caFile, 'utf8') : undefined);
}

function withClientHelpers(info: SecurityInfo, caPem: string | undefined): LocalKafkaSecurity {
  const all = [...(info.admin ? [info.admin] : []), ...info.users];
  const find = (u: string | ScramUser | undefined): ScramUser | undefined => {
    if (info.mechanism === undefined) return undefined;
    if (u === undefined) return info.admin;
    if (typeof u !== 'string') return u;
    const found = all.find((x) => x.name === u);
    if (!found) throw new SecuritySetupError(`no SCRAM user "${u}" on this broker (users: ${all.map((x) => x.name).join(', ')})`);
    return found;
  };
  return {
    ...info,
    caPem,
    kafkajs(u) {
      const user = find(u);
      return {
        ...(caPem ? { ssl: { ca: [caPem] } } : {}),
        ...(user && info.mechanism
          ? { sasl: { mechanism: info.mechanism === 'SCRAM-SHA-512' ? 'scram-sha-512' : 'scram-sha-256', username: user.name, password: user.password } as SASLOptions }
          : {}),
      };
    },
    librdkafka(u, mech) {
      const user = find(u);
      if (mech === 'PLAIN' && !info.plain) throw new SecuritySetupError('this broker does not accept SASL/PLAIN: start it with security.plain');
      return {
        'security.protocol': info.protocol,
        ...(info.caFile ? { 'ssl.ca.location': info.caFile } : {}),
        ...(user && info.mechanism ? { 'sasl.mechanisms': mech ?? info.mechanism, 'sasl.username': user.name, 'sasl.password': user.password } : {}),
      };
    },
  };
}
