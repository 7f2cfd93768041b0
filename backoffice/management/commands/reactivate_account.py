"""manage.py reactivate_account --provider P --external-id X [--tenant T] --reason TEXT [--dry-run]"""

from accounts.models import AccountStatus
from backoffice.status_command import StatusCommand


class Command(StatusCommand):
    help = "Reactivate a suspended account. The change is a ledger entry with this command as its actor."
    target = AccountStatus.ACTIVE
    verb = "reactivate"
