"""Peewee models over the schema created by `ledger/migrations/`. Unbound: `open_db()` binds them.

The migrations own the schema (tests check the two agree); the models are for readable queries and catalog
edits. Movements and stock levels are written only by `ledger/service.py`.
"""

from __future__ import annotations

import peewee as pw

from appliance import clock


class BaseModel(pw.Model):
    class Meta:
        legacy_table_names = False


class Site(BaseModel):
    id = pw.TextField(primary_key=True)
    name = pw.TextField()
    is_local = pw.BooleanField(default=False)
    epoch = pw.IntegerField(default=1)
    head_seq = pw.IntegerField(default=0)
    created_at = pw.TextField(default=clock.now_ts)
    location_prefix = pw.TextField(null=True)
    head_hash = pw.TextField(default="")
    recovering = pw.BooleanField(default=False)


class SiteKey(BaseModel):
    kid = pw.TextField(primary_key=True)
    site = pw.ForeignKeyField(Site, column_name="site_id", backref="keys")
    public_key = pw.TextField(unique=True)
    created_at = pw.TextField(default=clock.now_ts)
    retired_at = pw.TextField(null=True)


class Supplier(BaseModel):
    name = pw.TextField(unique=True)
    email = pw.TextField(null=True)
    phone = pw.TextField(null=True)
    lead_time_days = pw.IntegerField(null=True)
    created_at = pw.TextField(default=clock.now_ts)
    address = pw.TextField(default="")
    active = pw.BooleanField(default=True)


class Product(BaseModel):
    sku = pw.TextField(unique=True)
    name = pw.TextField()
    description = pw.TextField(default="")
    category = pw.TextField(default="")
    supplier = pw.ForeignKeyField(Supplier, null=True, column_name="supplier_id")
    image_url = pw.TextField(null=True)
    active = pw.BooleanField(default=True)
    created_at = pw.TextField(default=clock.now_ts)
    updated_at = pw.TextField(default=clock.now_ts)


class Variant(BaseModel):
    product = pw.ForeignKeyField(Product, column_name="product_id", backref="variants")
    sku = pw.TextField(unique=True)
    name = pw.TextField(default="")
    cost_price = pw.IntegerField(null=True)
    sale_price = pw.IntegerField(null=True)
    unit = pw.TextField(default="each")
    reorder_point = pw.IntegerField(null=True)
    reorder_qty = pw.IntegerField(null=True)
    active = pw.BooleanField(default=True)
    created_at = pw.TextField(default=clock.now_ts)
    updated_at = pw.TextField(default=clock.now_ts)
    max_qty = pw.IntegerField(null=True)
    supplier = pw.ForeignKeyField(Supplier, null=True, column_name="supplier_id")
    pack_size = pw.IntegerField(default=1)          # the supplier's pack: orders are rounded up to it
    min_order_qty = pw.IntegerField(default=0)


class Pack(BaseModel):
    variant = pw.ForeignKeyField(Variant, column_name="variant_id", backref="packs")
    name = pw.TextField()
    qty = pw.IntegerField()


class Barcode(BaseModel):
    code = pw.TextField(primary_key=True)
    variant = pw.ForeignKeyField(Variant, column_name="variant_id", backref="barcodes")
    pack = pw.ForeignKeyField(Pack, null=True, column_name="pack_id")
    kind = pw.TextField(default="gtin")


class Location(BaseModel):
    KINDS = ("warehouse", "zone", "bin", "dock", "in-transit")

    code = pw.TextField(unique=True)
    site = pw.ForeignKeyField(Site, column_name="site_id")
    name = pw.TextField(default="")
    kind = pw.TextField(default="bin")
    parent = pw.ForeignKeyField("self", null=True, column_name="parent_id")
    active = pw.BooleanField(default=True)
    created_at = pw.TextField(default=clock.now_ts)


class ReorderOverride(BaseModel):
    """A location's reorder rule: watches that location alone."""
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    location = pw.ForeignKeyField(Location, column_name="location_id")
    reorder_point = pw.IntegerField(null=True)
    reorder_qty = pw.IntegerField(null=True)
    max_qty = pw.IntegerField(null=True)
    supplier = pw.ForeignKeyField(Supplier, null=True, column_name="supplier_id")


class ReorderSiteRule(BaseModel):
    """A site's reorder rule: watches the site's total, like the variant's own columns, which it overrides."""
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    site = pw.ForeignKeyField(Site, column_name="site_id")
    reorder_point = pw.IntegerField(null=True)
    reorder_qty = pw.IntegerField(null=True)
    max_qty = pw.IntegerField(null=True)
    supplier = pw.ForeignKeyField(Supplier, null=True, column_name="supplier_id")

    class Meta:
        table_name = "reorder_site_rule"


class ReorderCompanyRule(BaseModel):
    """The company's rule for a variant: watches the total across sites; only its buyer site's box orders."""
    variant = pw.ForeignKeyField(Variant, column_name="variant_id", unique=True)
    reorder_point = pw.IntegerField()
    reorder_qty = pw.IntegerField(null=True)
    max_qty = pw.IntegerField(null=True)
    supplier = pw.ForeignKeyField(Supplier, null=True, column_name="supplier_id")
    buyer_site = pw.ForeignKeyField(Site, column_name="buyer_site_id")

    class Meta:
        table_name = "reorder_company_rule"


class User(BaseModel):
    ROLES = ("manager", "staff", "purchasing", "viewer")

    login = pw.TextField(unique=True)
    name = pw.TextField(default="")
    role = pw.TextField()
    active = pw.BooleanField(default=True)
    created_at = pw.TextField(default=clock.now_ts)
    password_hash = pw.TextField(null=True)
    failed_logins = pw.IntegerField(default=0)
    locked_until = pw.TextField(null=True)
    session_version = pw.IntegerField(default=1)
    language = pw.TextField(null=True)
    email = pw.TextField(null=True)          # where alerts for the user's role go ([alerts] email_roles)

    class Meta:
        table_name = "app_user"


class ApiToken(BaseModel):
    login = pw.TextField()
    name = pw.TextField()
    role = pw.TextField()
    token_hash = pw.TextField(unique=True)
    created_at = pw.TextField(default=clock.now_ts)
    last_used_at = pw.TextField(null=True)
    revoked_at = pw.TextField(null=True)

    class Meta:
        table_name = "api_token"


class LoginThrottle(BaseModel):
    client = pw.TextField(primary_key=True)
    failures = pw.IntegerField()
    window_start = pw.TextField()
    blocked_until = pw.TextField(null=True)

    class Meta:
        table_name = "login_throttle"


class Movement(BaseModel):
    origin = pw.TextField()
    epoch = pw.IntegerField()
    seq = pw.IntegerField()
    op_id = pw.TextField(null=True)
    kind = pw.TextField()
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    location = pw.ForeignKeyField(Location, column_name="location_id")
    to_location = pw.ForeignKeyField(Location, null=True, column_name="to_location_id")
    lot = pw.TextField(default="")
    expiry = pw.TextField(null=True)
    d_on_hand = pw.IntegerField(default=0)
    d_reserved = pw.IntegerField(default=0)
    d_in_transit = pw.IntegerField(default=0)
    unit_cost = pw.IntegerField(null=True)
    ref_type = pw.TextField(null=True)
    ref_id = pw.TextField(null=True)
    reverses_id = pw.IntegerField(null=True)
    reason = pw.TextField(null=True)
    note = pw.TextField(null=True)
    user_login = pw.TextField(null=True)
    device = pw.TextField(null=True)
    ts = pw.TextField()
    token = pw.TextField(null=True)
    hash = pw.TextField(null=True)


class Op(BaseModel):
    op_id = pw.TextField(primary_key=True)
    request_digest = pw.TextField()
    created_at = pw.TextField()


class Stock(BaseModel):
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    location = pw.ForeignKeyField(Location, column_name="location_id")
    lot = pw.TextField(default="")
    expiry = pw.TextField(null=True)
    on_hand = pw.IntegerField(default=0)
    reserved = pw.IntegerField(default=0)
    in_transit = pw.IntegerField(default=0)

    class Meta:
        primary_key = pw.CompositeKey("variant", "location", "lot")
        without_rowid = True


class Transfer(BaseModel):
    code = pw.TextField(unique=True)
    origin = pw.TextField()
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    from_location = pw.ForeignKeyField(Location, column_name="from_location_id")
    to_location = pw.ForeignKeyField(Location, column_name="to_location_id")
    qty_sent = pw.IntegerField()
    qty_received = pw.IntegerField(default=0)
    qty_short = pw.IntegerField(default=0)
    qty_over = pw.IntegerField(default=0)
    status = pw.TextField(default="in_transit")
    created_at = pw.TextField(default=clock.now_ts)
    closed_at = pw.TextField(null=True)


class Reservation(BaseModel):
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    location = pw.ForeignKeyField(Location, column_name="location_id")
    lot = pw.TextField(default="")
    qty = pw.IntegerField()
    qty_consumed = pw.IntegerField(default=0)
    qty_released = pw.IntegerField(default=0)
    ref = pw.TextField(null=True)
    status = pw.TextField(default="held")
    expires_at = pw.TextField(null=True)
    created_at = pw.TextField(default=clock.now_ts)
    closed_at = pw.TextField(null=True)


class SyncPeer(BaseModel):
    site = pw.ForeignKeyField(Site, column_name="site_id", primary_key=True)
    state = pw.TextField(default="unknown")
    last_heard = pw.TextField(null=True)
    head_epoch = pw.IntegerField(default=0)
    head_seq = pw.IntegerField(default=0)
    head_hash = pw.TextField(default="")
    head_ts = pw.TextField(null=True)
    hwm = pw.TextField(default="{}")
    quarantined_at = pw.TextField(null=True)
    quarantine_reason = pw.TextField(null=True)

    class Meta:
        table_name = "sync_peer"


class SyncAlarm(BaseModel):
    site_id = pw.TextField()
    kind = pw.TextField()
    count = pw.IntegerField(default=0)
    first_at = pw.TextField()
    last_at = pw.TextField()
    detail = pw.TextField()

    class Meta:
        table_name = "sync_alarm"
        primary_key = pw.CompositeKey("site_id", "kind")


class RemoteRequest(BaseModel):
    idem_key = pw.TextField(primary_key=True)
    action = pw.TextField()
    owner = pw.ForeignKeyField(Site, column_name="owner")
    sku = pw.TextField(null=True)
    location = pw.TextField(null=True)
    qty = pw.IntegerField(null=True)
    ttl_s = pw.IntegerField(null=True)
    reserve_key = pw.TextField(null=True)
    status = pw.TextField(default="PENDING")
    reservation_id = pw.IntegerField(null=True)
    available = pw.IntegerField(null=True)
    expires_at = pw.TextField(null=True)
    reason = pw.TextField(null=True)
    attempts = pw.IntegerField(default=0)
    created_at = pw.TextField(default=clock.now_ts)
    updated_at = pw.TextField(default=clock.now_ts)
    deadline = pw.TextField()

    class Meta:
        table_name = "remote_request"


class ScanLog(BaseModel):
    at = pw.TextField()
    station = pw.TextField()
    device = pw.TextField()
    raw = pw.TextField()
    kind = pw.TextField(null=True)
    interpretation = pw.TextField(null=True)
    outcome = pw.TextField()
    message = pw.TextField(default="")
    movement_ids = pw.TextField(null=True)
    resolved_at = pw.TextField(null=True)
    session = pw.TextField(null=True)       # JSON: the station's session before this scan (for a replay)
    feedback = pw.TextField(null=True)      # JSON of scanning.feedback.Feedback
    replay_of = pw.ForeignKeyField("self", null=True, column_name="replay_of", field="id", backref="+",
                                   lazy_load=False)
    replayed_by = pw.ForeignKeyField("self", null=True, column_name="replayed_by", field="id", backref="+",
                                     lazy_load=False)

    class Meta:
        table_name = "scan_log"


class StationSession(BaseModel):
    station = pw.TextField(primary_key=True)
    state = pw.TextField()                  # JSON of scanning.workflow.Session
    updated_at = pw.TextField()

    class Meta:
        table_name = "station_session"


class ChangeCounter(BaseModel):
    """Bumped by triggers (migration m0006) when the catalog changes what the dashboard's counts depend on."""
    name = pw.TextField(primary_key=True)
    n = pw.IntegerField()

    class Meta:
        table_name = "change_counter"


class DocCounter(BaseModel):
    site = pw.ForeignKeyField(Site, column_name="site_id")
    kind = pw.TextField()
    last = pw.IntegerField()

    class Meta:
        table_name = "doc_counter"
        primary_key = pw.CompositeKey("site", "kind")
        without_rowid = True


class PurchaseOrder(BaseModel):
    STATUSES = ("draft", "sent", "partial", "received", "cancelled")
    OPEN = ("draft", "sent", "partial")

    number = pw.TextField(unique=True)
    site = pw.ForeignKeyField(Site, column_name="site_id")
    supplier = pw.ForeignKeyField(Supplier, column_name="supplier_id")
    ship_to = pw.ForeignKeyField(Location, column_name="ship_to_id")
    status = pw.TextField(default="draft")
    auto = pw.BooleanField(default=False)
    note = pw.TextField(default="")
    created_at = pw.TextField(default=clock.now_ts)
    created_by = pw.TextField(null=True)
    sent_at = pw.TextField(null=True)
    sent_to = pw.TextField(null=True)
    expected_on = pw.TextField(null=True)
    closed_at = pw.TextField(null=True)
    updated_at = pw.TextField(default=clock.now_ts)

    class Meta:
        table_name = "purchase_order"


class PurchaseOrderLine(BaseModel):
    po = pw.ForeignKeyField(PurchaseOrder, column_name="po_id", backref="lines")
    line_no = pw.IntegerField()
    variant = pw.ForeignKeyField(Variant, column_name="variant_id")
    qty_ordered = pw.IntegerField()
    unit_cost = pw.IntegerField(null=True)
    qty_received = pw.IntegerField(default=0)
    qty_cancelled = pw.IntegerField(default=0)
    note = pw.TextField(default="")

    class Meta:
        table_name = "purchase_order_line"


class PurchaseOrderEvent(BaseModel):
    po = pw.ForeignKeyField(PurchaseOrder, column_name="po_id", backref="events")
    ts = pw.TextField()
    kind = pw.TextField()
    user = pw.TextField(null=True)
    detail = pw.TextField(default="{}")

    class Meta:
        table_name = "purchase_order_event"


class Alert(BaseModel):
    SEVERITIES = ("info", "warning", "critical")

    kind = pw.TextField()
    subject = pw.TextField()
    site_id = pw.TextField(null=True)
    severity = pw.TextField()
    message = pw.TextField()
    detail = pw.TextField(default="{}")
    first_seen = pw.TextField()
    last_seen = pw.TextField()
    seen_count = pw.IntegerField(default=1)
    resolved_at = pw.TextField(null=True)
    acknowledged_at = pw.TextField(null=True)
    acknowledged_by = pw.TextField(null=True)


class AlertDelivery(BaseModel):
    alert = pw.ForeignKeyField(Alert, null=True, column_name="alert_id", backref="deliveries")
    event = pw.TextField()
    channel = pw.TextField()
    target = pw.TextField()
    payload = pw.TextField()
    status = pw.TextField(default="pending")
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.TextField()
    last_error = pw.TextField(null=True)
    created_at = pw.TextField()
    delivered_at = pw.TextField(null=True)

    class Meta:
        table_name = "alert_delivery"


class JobRun(BaseModel):
    job = pw.TextField()
    scheduled_for = pw.TextField(null=True)
    started_at = pw.TextField()
    finished_at = pw.TextField(null=True)
    outcome = pw.TextField()
    detail = pw.TextField(default="")

    class Meta:
        table_name = "job_run"


class AgentCursor(BaseModel):
    name = pw.TextField(primary_key=True)
    value = pw.IntegerField()

    class Meta:
        table_name = "agent_cursor"
        without_rowid = True


class PrintJob(BaseModel):
    """A label to print (printing/queue.py owns its states; the spooler reads and writes it in plain SQL)."""
    printer = pw.TextField()
    label = pw.TextField()
    data = pw.TextField()
    copies = pw.IntegerField(default=1)
    state = pw.TextField(default="queued")
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(null=True)
    created_at = pw.TextField()
    updated_at = pw.TextField()
    next_attempt_at = pw.TextField()
    sent_at = pw.TextField(null=True)
    created_by = pw.TextField(null=True)
    station = pw.TextField(null=True)
    ref_type = pw.TextField(null=True)
    ref_id = pw.TextField(null=True)
    reprint_of = pw.ForeignKeyField("self", null=True, column_name="reprint_of")
    partial = pw.BooleanField(default=False)

    class Meta:
        table_name = "print_job"


MODELS = [Site, SiteKey, Supplier, Product, Variant, Pack, Barcode, Location, ReorderOverride, User, ApiToken,
          LoginThrottle, Movement, Op,
          Stock, Transfer, Reservation, SyncPeer, SyncAlarm, RemoteRequest, ScanLog,
          StationSession, ChangeCounter, ReorderSiteRule, ReorderCompanyRule, DocCounter, PurchaseOrder, PurchaseOrderLine,
          PurchaseOrderEvent, Alert, AlertDelivery, JobRun, AgentCursor, PrintJob]
