from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_access_version')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Manifest',
            name='pinned',
            field=fields.BooleanField(default=False),
        ),
    ]
