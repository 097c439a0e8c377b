'use strict';
// The node-soap client of the interop tier: reads the committed WSDL at run time and calls
// every guest operation (and the admin-only GetDomainPowerState, plus the Secure Boot
// certificate writes the server keeps for the admin) over mutual TLS.
//
//   node client.js INPUT.json
//
// INPUT.json (written by tests/interop/test_node.py) names the WSDL, the server URL, the
// guest's and the admin's bundles and the inputs (attribute changes, a Secure Boot
// certificate, a quote nonce, a signed firmware capsule, a CSR). Prints "CALLED <Operation>" after each answered
// call and, last, "RESULT <json>": what the server answered, for the test to compare
// with what the Python guest library reads.

const crypto = require('crypto');
const fs = require('fs');
const soap = require('soap');

/** A client from the WSDL file, over mutual TLS with `bundle` (cert, key, ca): the
 *  bundle's CA is the only one trusted and Node checks the server's name against the
 *  URL's host (127.0.0.1, in the server certificate's SAN). */
async function soapClient(input, bundle) {
  const client = await soap.createClientAsync(input.wsdl, { endpoint: input.url });
  client.setSecurity(new soap.ClientSSLSecurity(
    fs.readFileSync(bundle.key), fs.readFileSync(bundle.cert), fs.readFileSync(bundle.ca),
    { rejectUnauthorized: true }));
  return client;
}

/** Call `operation`, print CALLED on an answer; a fault rejects. */
async function call(client, operation, request = {}) {
  const [answer] = await client[`${operation}Async`](request);
  console.log(`CALLED ${operation}`);
  return answer;
}

/** A maxOccurs="unbounded" element as a list (one occurrence may come as the object
 *  itself, none as undefined). */
function items(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** AttributeValue elements for a name => value map (boolean, integer or string). */
function attributeValues(changes) {
  return {
    AttributeValue: Object.entries(changes).map(([name, value]) => {
      const field = typeof value === 'boolean' ? 'BooleanValue'
        : Number.isInteger(value) ? 'IntegerValue' : 'StringValue';
      return { Name: name, [field]: value };
    }),
  };
}

/** name => value of an AttributeValueList answer. */
function attributeMap(list) {
  const map = {};
  for (const item of items(list && list.AttributeValue)) {
    map[item.Name] = item.StringValue ?? item.IntegerValue ?? item.BooleanValue ?? null;
  }
  return map;
}

/** SHA-256 of `bytes` (a Buffer), lowercase hex. */
function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

function pemCertificate(base64Der) {
  const lines = base64Der.replace(/\s+/g, '').match(/.{1,64}/g).join('\n');
  return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----\n`;
}

/** The VbiosFaultDetail of a SOAP fault node-soap rejected with. */
function faultOf(error) {
  const fault = error.root && error.root.Envelope && error.root.Envelope.Body
    && error.root.Envelope.Body.Fault;
  if (!fault) throw error;
  const detail = fault.detail.VbiosFaultDetail;
  return { class: error.constructor.name, faultcode: fault.faultcode, code: detail.Code,
    message: detail.Message };
}

async function main(input) {
  const guest = await soapClient(input, input.guest);
  const admin = await soapClient(input, input.admin);
  const out = {};

  // -- attributes ----------------------------------------------------------------------
  const registry = await call(guest, 'GetAttributeRegistry');
  out.registry = {};
  for (const definition of items(registry.Attributes.AttributeDefinition)) {
    out.registry[definition.Name] = { type: definition.Type, read_only: definition.ReadOnly };
  }
  for (const name of Object.keys({ ...input.immediate, ...input.on_reset })) {
    if (!out.registry[name] || out.registry[name].read_only !== false) {
      throw new Error(`${name} is not a writable attribute of the registry`);
    }
  }
  const start = await call(guest, 'GetAttributes');
  let version = (await call(guest, 'SetAttributes', {
    Attributes: attributeValues(input.immediate), ApplyTime: 'Immediate',
    ExpectedVersion: start.Version })).Version;
  try { // the version before that write is stale now: a typed fault
    await call(guest, 'SetAttributes', { Attributes: attributeValues(input.immediate),
      ApplyTime: 'Immediate', ExpectedVersion: start.Version });
    throw new Error('a stale ExpectedVersion was accepted');
  } catch (error) {
    out.fault = faultOf(error);
  }
  const named = await call(guest, 'GetAttributes',
    { Names: { Name: Object.keys(input.immediate) } });
  out.attributes_after_set = attributeMap(named.Attributes);
  version = (await call(guest, 'SetAttributes', { Attributes: attributeValues(input.on_reset),
    ApplyTime: 'OnReset', ExpectedVersion: version })).Version;
  out.pending_after_set = attributeMap((await call(guest, 'GetPendingAttributes')).Attributes);
  version = (await call(guest, 'CancelPendingAttributes', { ExpectedVersion: version })).Version;
  version = (await call(guest, 'ResetAttributesToDefaults',
    { ExpectedVersion: version })).Version;
  out.pending_defaults = attributeMap((await call(guest, 'GetPendingAttributes')).Attributes);
  version = (await call(guest, 'CancelPendingAttributes', { ExpectedVersion: version })).Version;
  const password = input.setup_password;
  version = (await call(guest, 'ChangePassword', { PasswordName: 'SetupPassword',
    NewPassword: password, ExpectedVersion: version })).Version;
  out.password_set = (await call(guest, 'GetAttributes', { Names: { Name: ['NumLock'] } }))
    .SetupPasswordSet;
  version = (await call(guest, 'ChangePassword', { PasswordName: 'SetupPassword',
    OldPassword: password, NewPassword: '', ExpectedVersion: version,
    Password: password })).Version;

  // -- boot ----------------------------------------------------------------------------
  let boot = await call(guest, 'GetBootOrder');
  const order = items(boot.Order.OptionId).reverse();
  version = (await call(guest, 'SetBootOrder', { Order: { OptionId: order },
    ExpectedVersion: version })).Version;
  version = (await call(guest, 'SetBootNext', { BootNext: order[0],
    ExpectedVersion: version })).Version;
  boot = await call(guest, 'GetBootOrder');
  out.boot = { order: items(boot.Order.OptionId), boot_next: boot.BootNext ?? null,
    version: boot.Version };

  // -- Secure Boot ---------------------------------------------------------------------
  const secure = await call(guest, 'GetSecureBoot');
  out.secure_boot_before = secure.Enabled;
  version = (await call(guest, 'SetSecureBoot', { Enabled: !secure.Enabled,
    ExpectedVersion: version })).Version;
  out.secure_boot_pending = (await call(guest, 'GetSecureBoot')).PendingEnabled ?? null;
  version = (await call(guest, 'ResetSecureBootKeys', {
    ResetKeysType: 'ResetAllKeysToDefault', ExpectedVersion: version })).Version;
  const database = input.secure_boot_database;
  await call(admin, 'AddSecureBootCertificate', { Domain: input.domain, Database: database,
    Certificate: fs.readFileSync(input.secure_boot_certificate, 'utf8') });
  out.databases = {};
  const databases = await call(guest, 'GetSecureBootDatabases');
  for (const db of items(databases.Databases.Database)) {
    out.databases[db.Name] = items(db.Certificates && db.Certificates.Certificate)
      .map((c) => c.Sha256);
  }
  out.removed = out.databases[database][out.databases[database].length - 1];
  await call(admin, 'RemoveSecureBootCertificate', { Domain: input.domain,
    Database: database, Sha256: out.removed });

  // -- power ---------------------------------------------------------------------------
  out.power_before = (await call(guest, 'GetPowerState')).PowerState;
  // events: subscribed (every type: EventTypes left out) before the Reset, read after it
  const subscribed = await call(guest, 'Subscribe', { ExpiresIn: input.events.expires_in });
  const reset = await call(guest, 'Reset', { ResetType: 'On' });
  out.reset = { power_state: reset.PowerState, message: reset.Message };
  out.power_after = (await call(guest, 'GetPowerState')).PowerState;
  const domain = await call(admin, 'GetDomainPowerState', { Domain: input.domain });
  out.domain_power = { power_state: domain.PowerState, machine: domain.Machine };
  out.secure_boot_after_reset = (await call(guest, 'GetSecureBoot')).Enabled;

  // -- events: what the Reset published, from the Subscribe's cursor --------------------
  // (keys in the schema's order: node-soap writes them as the object lists them)
  const read = await call(guest, 'GetEvents', { SubscriptionId: subscribed.SubscriptionId,
    Cursor: subscribed.Cursor, Wait: input.events.wait });
  const events = items(read.Events && read.Events.Event);
  out.events = { subscription_id: subscribed.SubscriptionId,
    cursor: String(subscribed.Cursor), expires: subscribed.Expires,
    event_ids: events.map((event) => String(event.EventId)),
    event_types: events.map((event) => event.EventType),
    event_domains: events.map((event) => event.Domain ?? null),  // optional: host-wide
    next_cursor: String(read.NextCursor), events_lost: read.EventsLost };
  out.events.renewed_expires = (await call(guest, 'Renew', {
    SubscriptionId: subscribed.SubscriptionId, ExpiresIn: input.events.renew_in })).Expires;
  out.events.unsubscribed = (await call(guest, 'Unsubscribe', {
    SubscriptionId: subscribed.SubscriptionId })).SubscriptionId;

  // -- attestation ---------------------------------------------------------------------
  const measured = await call(guest, 'GetBootMeasurements', { Bank: input.bank });
  out.measurements = { bank: measured.Bank,
    pcrs: items(measured.Pcrs.PcrValue).map((p) => p.Index),
    events: items(measured.Events && measured.Events.MeasuredEvent).length };
  // base64Binary is base64 text both ways in node-soap
  const quote = await call(guest, 'GetQuote', { Nonce: input.nonce, Bank: input.bank,
    PcrSelection: { Index: input.pcrs } });
  out.quote = { attest: quote.Attest, signature: quote.Signature, bank: quote.Bank,
    pcrs: items(quote.Pcrs.PcrValue).map((p) => ({ index: p.Index, value: p.Value })),
    ak_certificate: quote.AkCertificate, event_log: quote.EventLog };
  const status = (await call(guest, 'GetIntegrityStatus')).Status;
  out.integrity = { state: status.State, bank: status.Bank };
  const reference = await call(guest, 'GetReferenceMeasurements');
  out.reference_digest = (reference && reference.ReferenceDigest) ?? null;
  const diagnostics = await call(guest, 'CollectDiagnostics');
  out.diagnostics = { state: diagnostics.Status.State,
    audit_operations: items(diagnostics.AuditEntries.AuditEntry).map((e) => e.Operation) };

  // -- firmware update (after the reset: the job waits for the next one) ---------------
  const firmware = input.firmware;
  const [entry] = items((await call(guest, 'GetFirmwareInventory')).Firmware.Entry);
  out.firmware = { fw_version: entry.FwVersion, active_slot: entry.ActiveSlot };
  const capsule = fs.readFileSync(firmware.capsule);
  const upload = await call(guest, 'BeginFirmwareUpload', { Size: firmware.size,
    Sha256: firmware.sha256 });
  const chunkSize = Math.min(firmware.chunk_size, upload.MaxChunkSize);
  let offset = upload.NextOffset;
  let chunks = 0;
  while (offset < capsule.length) { // each chunk starts where the server says
    const chunk = capsule.subarray(offset, offset + chunkSize);
    const next = (await call(guest, 'UploadFirmwareChunk', { UploadId: upload.UploadId,
      Offset: offset, Data: chunk.toString('base64'), Sha256: sha256(chunk) })).NextOffset;
    if (!(next > offset)) throw new Error(`the upload did not move past offset ${offset}`);
    offset = next;
    chunks += 1;
  }
  out.firmware.chunks = chunks;
  out.firmware.next_offset = (await call(guest, 'GetFirmwareUpload',
    { UploadId: upload.UploadId })).NextOffset;
  const job = (await call(guest, 'CommitFirmwareUpload', { UploadId: upload.UploadId,
    ApplyTime: 'OnReset' })).Job;
  // xs:unsignedLong is left as its text by node-soap (xs:long becomes a Number)
  Object.assign(out.firmware, { job_id: job.JobId, state: job.State, slot: job.Slot,
    monotonic_count: job.MonotonicCount });
  out.firmware.job_state = (await call(guest, 'GetFirmwareJob', { JobId: job.JobId })).Job
    .State;
  const history = (await call(guest, 'GetFirmwareHistory')).Jobs;
  out.firmware.history = items(history && history.Job).map((j) => j.JobId);

  // -- system management and thermal (after the reset: the log holds its power entries)
  const smbios = await call(guest, 'GetSmbios');
  out.system = { bios_vendor: smbios.Bios.Vendor, bios_version: smbios.Bios.Version,
    system_serial: smbios.System.SerialNumber, system_uuid: smbios.System.Uuid };
  const thermal = await call(guest, 'GetThermal');
  const cpu = items(thermal.Temperatures && thermal.Temperatures.Sensor)
    .find((sensor) => sensor.PhysicalContext === 'CPU');
  if (!cpu || typeof cpu.Reading !== 'number') {  // xs:double: node-soap gives a Number
    throw new Error(`GetThermal answered no CPU reading as a number: ${JSON.stringify(cpu)}`);
  }
  Object.assign(out.system, { cpu_reading: cpu.Reading,
    cpu_upper_critical: cpu.Thresholds.UpperCritical.Reading });
  // RFC 3339 in UTC, whole seconds (WakeTime is an xs:string in the WSDL)
  const wake = new Date(Date.now() + 600000).toISOString().replace(/\.\d+Z$/, 'Z');
  await call(guest, 'SetWakeAlarm', { WakeTime: wake });
  out.system.wake_set = wake;
  out.system.wake_read = (await call(guest, 'GetWakeAlarm')).Alarm.WakeTime;
  out.system.wake_cleared = (await call(guest, 'ClearWakeAlarm')).Cleared;
  const armed = (await call(guest, 'SetWatchdog', { Enabled: true,
    TimeoutSeconds: input.watchdog_seconds })).Watchdog;
  out.system.watchdog_armed = armed.TimeoutSeconds;
  out.system.watchdog_pet_deadline = (await call(guest, 'PetWatchdog')).Watchdog.Deadline;
  out.system.watchdog_enabled = (await call(guest, 'GetWatchdog')).Watchdog.Enabled;
  out.system.watchdog_disarmed = (await call(guest, 'SetWatchdog', { Enabled: false }))
    .Watchdog.Enabled;
  const log = await call(guest, 'GetSystemEventLog');
  const entries = items(log.Entries && log.Entries.Entry);
  Object.assign(out.system, { sel_entries: entries.length,
    sel_last_id: Math.max(0, ...entries.map((entry) => Number(entry.Id))),
    sel_message_ids: entries.map((entry) => entry.MessageId) });
  out.system.sel_removed = (await call(guest, 'ClearSystemEventLog')).Removed;

  // -- credential (last: using the renewed certificate revokes the old one) ------------
  out.provisioning_before = (await call(guest, 'GetProvisioningState')).State;
  const issued = await call(guest, 'RenewCertificate', {
    CertificateRequest: fs.readFileSync(input.certificate_request).toString('base64') });
  fs.writeFileSync(input.renewed.cert, pemCertificate(issued.Certificate));
  out.renewed_serial = issued.Serial;
  const renewed = await soapClient(input, input.renewed);
  out.provisioning_renewed = (await call(renewed, 'GetProvisioningState')).State;
  const final = await call(renewed, 'GetAttributes');
  out.final = { version: final.Version, attributes: attributeMap(final.Attributes),
    setup_password_set: final.SetupPasswordSet };
  return out;
}

main(JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))).then(
  (out) => console.log(`RESULT ${JSON.stringify(out)}`),
  (error) => {
    console.error(error && error.root ? JSON.stringify(error.root) : '', error);
    process.exit(1);
  },
);
